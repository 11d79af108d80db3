"""Learning-rate schedules: warm-up, decay shapes and end points."""

from __future__ import annotations

import pytest

from reelforge.jobs.lr_schedule import FINAL_LR_FRACTION, lr_factor


def test_warmup_rises_linearly_to_the_peak():
    assert [lr_factor(s, 100, 4, "cosine") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 100, 4, "cosine") == pytest.approx(1.0)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_decay_ends_at_the_final_fraction_and_never_rises(schedule: str):
    values = [lr_factor(s, 50, 5, schedule) for s in range(5, 51)]
    assert values[-1] == pytest.approx(FINAL_LR_FRACTION)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_is_halfway_at_the_midpoint_and_constant_stays_flat():
    mid = lr_factor(50, 100, 0, "cosine")
    assert mid == pytest.approx(FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5)
    assert {lr_factor(s, 100, 0, "constant") for s in range(100)} == {1.0}
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(10, 100, 0, "exponential")
