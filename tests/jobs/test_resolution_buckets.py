"""Resolution buckets (a pure function): the closest aspect ratio wins."""

from __future__ import annotations

import pytest

from reelforge.jobs.resolution_buckets import choose_bucket

WAN_BUCKETS = [(832, 480), (480, 832), (624, 624)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (832, 480)), ((1080, 1920), (480, 832)), ((1000, 1000), (624, 624)), ((32, 30), (624, 624))],
)
def test_bucket_follows_aspect_ratio(size, expected):
    assert choose_bucket(*size, WAN_BUCKETS) == expected


def test_no_buckets_is_an_error():
    with pytest.raises(ValueError):
        choose_bucket(16, 9, [])
