"""Rank 0's metric logger on a real MLflow store (SQLite): buffered per-step metrics keep their own
step and time and are all in the run once the buffer is flushed, by age or at a checkpoint."""

from __future__ import annotations

from reelforge.jobs.run_tracking import MAX_METRICS_PER_BATCH, RankZeroLogger, tracking_client
from reelforge.settings import Settings


def _run(tmp_path):
    settings = Settings(home=tmp_path)
    client = tracking_client(settings)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    return settings, client, run_id


def test_buffered_metrics_are_written_with_their_steps_by_flush(tmp_path):
    settings, client, run_id = _run(tmp_path)
    tracker = RankZeroLogger(settings.resolved_mlflow_tracking_uri, run_id, enabled=True, buffer_seconds=3600)
    steps = MAX_METRICS_PER_BATCH  # two metrics a step: more than one MLflow batch
    for step in range(1, steps + 1):
        tracker.metrics(
            {"train/loss": 1.0 / step, "train/lr": 0.1, "train/nan": float("nan")}, step=step, buffered=True
        )
    assert client.get_metric_history(run_id, "train/loss") == []  # still buffered
    tracker.flush()
    history = sorted(client.get_metric_history(run_id, "train/loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1, steps + 1))
    assert history[-1].value == 1.0 / steps
    assert len(client.get_metric_history(run_id, "train/lr")) == steps
    assert client.get_metric_history(run_id, "train/nan") == []  # non-finite values are never logged


def test_a_buffer_older_than_its_limit_is_written_by_the_next_metric(tmp_path):
    settings, client, run_id = _run(tmp_path)
    tracker = RankZeroLogger(settings.resolved_mlflow_tracking_uri, run_id, enabled=True, buffer_seconds=0)
    tracker.metrics({"train/loss": 0.5}, step=1, buffered=True)
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1]


def test_unbuffered_metrics_are_written_at_once(tmp_path):
    settings, client, run_id = _run(tmp_path)
    tracker = RankZeroLogger(settings.resolved_mlflow_tracking_uri, run_id, enabled=True, buffer_seconds=3600)
    tracker.metrics({"eval/loss": 0.25}, step=10)
    assert [m.value for m in client.get_metric_history(run_id, "eval/loss")] == [0.25]


def test_a_disabled_logger_writes_nothing(tmp_path):
    tracker = RankZeroLogger(f"sqlite:///{tmp_path / 'never.db'}", "no-run", enabled=False)
    tracker.metrics({"train/loss": 1.0}, step=1, buffered=True)
    tracker.metrics({"train/loss": 1.0}, step=2)
    tracker.flush()
    assert not (tmp_path / "never.db").exists()
