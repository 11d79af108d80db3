"""The `reelforge` command: `main.py` assembles one module per command group."""
