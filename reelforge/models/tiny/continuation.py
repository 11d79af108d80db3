"""Continuing training reelforge-tiny from a saved model: loading it, saving the result, the command line.

`python -m reelforge.models.tiny.<script> --work-dir DIR --out DIR [--base DIR] [--set KEY=VALUE]`:
checkpoints go to the work directory (re-run to resume), the diffusers pipeline to `--out`, and
`--set` overrides one field of the script's config dataclass.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from diffusers import WanPipeline

from reelforge.models.spec import ModelDefaults
from reelforge.models.tiny.random_pipeline import MODEL_CARD_CONFIG, save_model_dir

logger = logging.getLogger(__name__)


def open_base(config: Any, base_dir: Path, work_dir: Path) -> tuple[WanPipeline, dict, ModelDefaults]:
    """The model at `base_dir`, its card and defaults; records `config` in `work_dir` and sets the threads."""
    torch.set_num_threads(config.threads)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    card = json.loads((base_dir / MODEL_CARD_CONFIG).read_text())
    pipeline = WanPipeline.from_pretrained(str(base_dir), local_files_only=True)
    return pipeline, card, ModelDefaults.from_dict(card["defaults"])


def save_continued(
    pipeline: WanPipeline, out_dir: Path, defaults: ModelDefaults, card: dict, key: str, config: Any, started: float
) -> Path:
    """Write the continued model, its card recording `config` under `key` and the seconds since `started`."""
    card = dict(card)
    card.pop("defaults", None)
    card.pop("architecture", None)  # the family is read from model_index.json
    elapsed = time.perf_counter() - started
    card[key] = asdict(config)
    seconds = f"{key.removesuffix('_training')}_seconds"
    card[seconds] = card.get(seconds, 0) + elapsed
    # Every continuation in order, so running one script twice does not erase the record of its first run.
    card["continuations"] = [
        *card.get("continuations", []),
        {"script": key, "config": asdict(config), "seconds": elapsed},
    ]
    return save_model_dir(pipeline, out_dir, defaults, card)


def parse_field_value(kind: type, value: str):
    """`value` as a config field of type `kind`; booleans by their words, since bool("false") is True."""
    if kind is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if value.lower() not in words:
            raise ValueError(value)
        return words[value.lower()]
    return kind(value)


def run_continuation(
    config_type: type,
    continue_training: Callable[[Any, Path, Path, Path], Path],
    description: str,
    base_help: str,
    argv: list[str] | None = None,
) -> None:
    """Parse the shared arguments, build `config_type` with the overrides, and run `continue_training`."""
    from reelforge.models.presets import PACKAGED_TINY_DIR

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True, help="checkpoints; re-run to resume")
    parser.add_argument("--out", type=Path, required=True, help="where to write the diffusers pipeline")
    parser.add_argument("--base", type=Path, default=PACKAGED_TINY_DIR, help=base_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    known = {f.name for f in fields(config_type)}
    defaults = config_type()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in known:
            parser.error(f"--set {item}: unknown field {key!r}; known: {', '.join(sorted(known))}")
        try:
            overrides[key] = parse_field_value(type(getattr(defaults, key)), value)
        except ValueError:
            parser.error(f"--set {item}: {key} takes a {type(getattr(defaults, key)).__name__}")
    path = continue_training(config_type(**overrides), args.base, args.work_dir, args.out)
    logger.info("wrote %s", path)
