"""Where the CLI writes: results on stdout, progress and errors on stderr (paths stay on one line)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reelforge.settings import Settings

stderr = Console(stderr=True, soft_wrap=True)
stdout = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Serve config (as for `serve deploy`); its database is used.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def platform_settings(config: Path | None) -> Settings:
    """The settings of the platform a serve config describes, or of the environment without one."""
    if config is None:
        return Settings.from_env()
    from reelforge.platform.config import read_serve_file

    return read_serve_file(config)[0].settings()
