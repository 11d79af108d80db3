"""Quotas under racing requests: with a limit of 2, twelve parallel creates record exactly two jobs,
for video jobs and fine-tuning jobs, on SQLite and PostgreSQL (each thread its own connection)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reelforge.platform.stores.database import dispose_engine
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
from reelforge.platform.stores.quota_guard import QuotaExceeded, _lock_key
from reelforge.platform.stores.video_jobs import VideoJob, VideoJobStore

RACERS, LIMIT = 12, 2


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'platform.db'}"
        yield url
        dispose_engine(url)
    else:
        yield request.getfixturevalue("postgres_url")


def race(create) -> tuple[int, int, list[Exception]]:
    """Run `create` from RACERS threads released together; (accepted, refused, unexpected errors)."""
    start = threading.Barrier(RACERS)
    outcomes: list[str | Exception] = []

    def run() -> None:
        start.wait()
        try:
            create()
            outcomes.append("accepted")
        except QuotaExceeded:
            outcomes.append("refused")
        except Exception as exc:  # collected: the assertion shows it
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [o for o in outcomes if isinstance(o, Exception)]
    return outcomes.count("accepted"), outcomes.count("refused"), errors


def video(tenant: str) -> VideoJob:
    return VideoJob(
        tenant=tenant,
        model="m",
        base_model="m",
        adapter=None,
        deployment="d",
        prompt="p",
        seconds="1",
        size="32x32",
        num_frames=9,
        fps=8.0,
        seed=0,
    )


def test_parallel_video_creates_never_overshoot(database_url):
    jobs = VideoJobStore(database_url)
    jobs.create(video("other"), max_active=LIMIT)  # another tenant's job counts only for that tenant
    accepted, refused, errors = race(lambda: jobs.create(video("acme"), max_active=LIMIT))
    assert errors == [] and (accepted, refused) == (LIMIT, RACERS - LIMIT)
    assert jobs.count_active("acme") == LIMIT
    with pytest.raises(QuotaExceeded) as refused_one:
        jobs.create(video("acme"), max_active=LIMIT)
    assert (refused_one.value.active, refused_one.value.limit) == (LIMIT, LIMIT)


def test_parallel_fine_tune_creates_never_overshoot(database_url):
    store = FineTuneStore(database_url)

    def create():
        store.create(
            max_active=1,
            tenant="acme",
            model="m",
            training_file="file-1",
            suffix="s",
            seed=0,
            hyperparameters={},
            config={},
        )

    accepted, refused, errors = race(create)
    assert errors == [] and (accepted, refused) == (1, RACERS - 1)
    assert store.count_active("acme") == 1


def test_lock_keys_are_signed_64_bit_and_distinct():
    keys = {_lock_key(kind, tenant) for kind in ("videos", "fine-tunes") for tenant in ("acme", "globex", "a" * 63)}
    assert len(keys) == 6 and all(-(2**63) <= k < 2**63 for k in keys)
