"""The GPU acceptance script runs end to end at tiny sizes on the CPU (`--smoke`), so it is ready for a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_gpu_acceptance_smoke_reports_every_stage(tmp_path: Path):
    out = tmp_path / "gpu_acceptance.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_acceptance", "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    stages = ("generate_1_3b", "generate_ti2v_5b", "lora_1_3b_gc_off", "lora_1_3b_gc_on", "a14b_expert_lora_gc_on")
    for stage in (*stages, "a14b_expert_guided_step"):
        assert result[stage]["s_per_step"] > 0, stage
    assert result["adapter_hot_switch"]["load_and_activate_s"] > 0
    assert "9.77 s/step" in done.stdout  # each stage printed beside its anchor
