"""A training worker's liveness file: throttled to its interval, always written when forced."""

from __future__ import annotations

import json
import os

from reelforge.jobs.train_worker import Heartbeat


def test_beats_inside_the_interval_are_skipped_and_forced_ones_are_written(tmp_path):
    heartbeat = Heartbeat(tmp_path / "workers", rank=1, attempt_started=123.0, interval_s=3600)
    heartbeat.beat(1)
    heartbeat.beat(2)  # under an hour after the first: skipped
    path = tmp_path / "workers" / "rank-1.json"
    assert json.loads(path.read_text())["step"] == 1
    heartbeat.beat(10, force=True)  # a checkpoint
    beat = json.loads(path.read_text())
    assert beat["step"] == 10 and beat["pid"] == os.getpid() and beat["attempt_started"] == 123.0


def test_with_no_interval_every_beat_is_written(tmp_path):
    heartbeat = Heartbeat(tmp_path, rank=0, attempt_started=0.0, interval_s=0)
    for step in range(1, 4):
        heartbeat.beat(step)
        assert json.loads((tmp_path / "rank-0.json").read_text())["step"] == step
