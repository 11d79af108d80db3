"""`reelforge compare`: a tenant's fine-tune runs side by side, and their loss curves as a PNG.

Only params that differ between the listed runs are shown: in a sweep, those are the swept keys
(plus anything else that changed), which is what a reader wants to line up against the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reelforge.errors import UserInputError
from reelforge.jobs.run_tracking import (
    TAG_PREFIX,
    experiment_name,
    tenant_experiment_id,
    tracking_client,
)
from reelforge.settings import Settings

# Params that differ between any two runs without meaning anything (paths, ids, resolved echoes).
_NOISE_PARAMS = {"data", "resolved.model_dir"}


@dataclass
class RunRow:
    """One run in the comparison table."""

    run_id: str
    name: str
    status: str
    job_id: str
    sweep_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    seconds: float | None
    differing: dict[str, str] = field(default_factory=dict)


def compare_runs(settings: Settings, tenant: str, sweep_id: str | None = None) -> list[RunRow]:
    """The tenant's runs (optionally of one sweep), oldest first, with `differing` params filled in."""
    client = tracking_client(settings)
    experiment_id = tenant_experiment_id(client, settings, tenant, create=False)
    if experiment_id is None:
        raise UserInputError(f"tenant {tenant!r} has no fine-tune runs yet (no experiment {experiment_name(tenant)!r})")
    filter_string = f"tags.`{TAG_PREFIX}sweep_id` = '{sweep_id}'" if sweep_id else ""
    runs = client.search_runs(
        [experiment_id], filter_string=filter_string, order_by=["attributes.start_time ASC"], max_results=500
    )
    rows = [
        RunRow(
            run_id=run.info.run_id,
            name=run.info.run_name or run.info.run_id,
            status=run.info.status,
            job_id=run.data.tags.get(f"{TAG_PREFIX}job_id", ""),
            sweep_id=run.data.tags.get(f"{TAG_PREFIX}sweep_id", ""),
            params=dict(run.data.params),
            metrics={k: v for k, v in run.data.metrics.items()},
            seconds=(run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None,
        )
        for run in runs
    ]
    keys = sorted({k for row in rows for k in row.params} - _NOISE_PARAMS)
    differing = [k for k in keys if len({row.params.get(k) for row in rows}) > 1]
    for row in rows:
        row.differing = {k: row.params.get(k, "-") for k in differing}
    return rows


def plot_loss_curves(settings: Settings, rows: list[RunRow], path: Path) -> Path:
    """Training loss (smoothed) and held-out eval loss per run, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = tracking_client(settings)
    figure, (train_ax, eval_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in rows:
        label = row.name + (" " + ", ".join(f"{k}={v}" for k, v in row.differing.items()) if row.differing else "")
        train = sorted((m.step, m.value) for m in client.get_metric_history(row.run_id, "train/loss"))
        if train:
            steps, values = zip(*train)
            train_ax.plot(steps, _ema(list(values)), label=label)
        held_out = sorted((m.step, m.value) for m in client.get_metric_history(row.run_id, "eval/loss"))
        if held_out:
            steps, values = zip(*held_out)
            eval_ax.plot(steps, values, marker="o", label=label)
    train_ax.set(title="training loss (EMA 0.9)", xlabel="step", ylabel="loss")
    eval_ax.set(title="held-out eval loss (fixed timesteps and noise)", xlabel="step", ylabel="loss")
    for axis in (train_ax, eval_ax):
        axis.grid(alpha=0.3)
    eval_ax.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _ema(values: list[float], decay: float = 0.9) -> list[float]:
    smoothed, current = [], values[0]
    for value in values:
        current = decay * current + (1 - decay) * value
        smoothed.append(current)
    return smoothed
