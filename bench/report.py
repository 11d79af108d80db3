"""Where every benchmark's result goes: printed, and saved as JSON under bench-output/."""

from __future__ import annotations

import json
from pathlib import Path


def save_result(result: dict, path: Path) -> dict:
    """Write `result` to `path` as JSON and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
