"""Usage records on a real SQLite database: one per job however often it is reported, summed by day."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.errors import UserInputError
from reelforge.platform.stores.usage import (
    GENERATION,
    TRAINING,
    UsageMeter,
    parse_day,
    usage_record,
    utc_day,
)

DAY1, DAY2 = 1_795_000_000.0, 1_795_000_000.0 + 86_400


@pytest.fixture
def meter(tmp_path: Path) -> UsageMeter:
    return UsageMeter(f"sqlite:///{tmp_path / 'usage.db'}")


def test_a_job_is_counted_once(meter):
    assert meter.record(usage_record("acme", GENERATION, "video_1", "reelforge-tiny", None, "cpu", 1.5, 17, at=DAY1))
    assert not meter.record(
        usage_record("acme", GENERATION, "video_1", "reelforge-tiny", None, "cpu", 1.5, 17, at=DAY1)
    )
    assert [(s.jobs, s.frames) for s in meter.summary("acme")] == [(1, 17)]


def test_summary_groups_by_day_kind_and_model_and_filters_dates(meter):
    meter.record(usage_record("acme", GENERATION, "video_1", "reelforge-tiny", None, "cpu", 1.0, 17, at=DAY1))
    meter.record(
        usage_record(
            "acme",
            GENERATION,
            "video_2",
            "ft:reelforge-tiny:acme:brand",
            "acme.brand.reelforge-tiny/2",
            "cpu",
            2.0,
            33,
            at=DAY1,
        )
    )
    meter.record(usage_record("acme", GENERATION, "video_3", "reelforge-tiny", None, "cpu", 0.5, 9, at=DAY1 + 60))
    meter.record(usage_record("acme", TRAINING, "ft-1", "reelforge-tiny", None, "cpu", 300.0, 0, at=DAY2))
    meter.record(usage_record("globex", GENERATION, "video_4", "reelforge-tiny", None, "cpu", 9.0, 99, at=DAY1))
    rows = [s.to_dict() for s in meter.summary("acme")]
    assert rows == [
        {
            "day": utc_day(DAY1),
            "kind": GENERATION,
            "model": "ft:reelforge-tiny:acme:brand",
            "device": "cpu",
            "jobs": 1,
            "seconds": 2.0,
            "frames": 33,
        },
        {
            "day": utc_day(DAY1),
            "kind": GENERATION,
            "model": "reelforge-tiny",
            "device": "cpu",
            "jobs": 2,
            "seconds": 1.5,
            "frames": 26,
        },
        {
            "day": utc_day(DAY2),
            "kind": TRAINING,
            "model": "reelforge-tiny",
            "device": "cpu",
            "jobs": 1,
            "seconds": 300.0,
            "frames": 0,
        },
    ]
    assert [s.kind for s in meter.summary("acme", start_day=utc_day(DAY2))] == [TRAINING]
    assert len(meter.summary("acme", end_day=utc_day(DAY1))) == 2


def test_dates_from_clients_are_checked():
    assert parse_day("2026-11-21", "start_date") == "2026-11-21"
    with pytest.raises(UserInputError, match="start_date '21/11/2026' is not a date of the form YYYY-MM-DD") as info:
        parse_day("21/11/2026", "start_date")
    assert info.value.param == "start_date"
