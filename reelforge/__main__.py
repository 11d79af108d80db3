"""`python -m reelforge` runs the CLI."""

from reelforge.cli import main

main()
