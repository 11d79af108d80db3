"""`python -m reelforge` runs the CLI."""

from reelforge.cli.main import main

main()
