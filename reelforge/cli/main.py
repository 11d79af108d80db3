"""The `reelforge` command: one root app, one module per command group, and the one place that maps
reelforge errors to exit codes (`UserInputError` prints one line and exits 2)."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.logging import RichHandler

from reelforge.cli import (
    adapters,
    audit,
    database,
    finetune,
    generation,
    ingest,
    review,
    serving,
    tenants,
    usage,
    world,
)
from reelforge.cli.console import stderr
from reelforge.errors import ReelforgeError

app = typer.Typer(
    name="reelforge",
    help=(
        "Fine-tune open text-to-video diffusion transformers on your own footage with LoRA and "
        "generate videos with them.\n\nStart with `reelforge models` to see which models this machine "
        'has, then `reelforge generate "a red circle moving left on a white background" -o out.mp4`.'
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Unnamed groups add their commands at the top level; named ones become `reelforge <name> ...`.
for group in (generation, world, ingest, finetune, adapters, serving, tenants, review, usage, audit, database):
    app.add_typer(group.app)
logger = logging.getLogger("reelforge")


@app.callback()
def _configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Set up logging once for every subcommand."""
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=stderr, show_path=False)]
    )
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    # Ray Data logs every operator's metrics; our own progress bars say what matters.
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.WARNING)
    # Third-party load bars and info chatter would interleave with ours; their errors still show.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def main() -> None:
    """Console-script entry point: run the app and map reelforge errors to exit codes."""
    try:
        app(prog_name="reelforge")
    except ReelforgeError as exc:
        stderr.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
