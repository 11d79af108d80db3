"""The clip policy and resolution buckets (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.jobs.clip_preparation import (
    ClipWindow,
    choose_bucket,
    cut_clips,
    plan_clips,
    resize_center_crop,
)
from reelforge.models.video_io import Video

WAN_BUCKETS = [(832, 480), (480, 832), (624, 624)]


def test_windows_are_consecutive_and_non_overlapping():
    assert plan_clips(50, 17) == [ClipWindow(0, 17), ClipWindow(17, 17)]  # 16-frame tail dropped
    assert plan_clips(16, 17) == []
    assert plan_clips(17, 17) == [ClipWindow(0, 17)]
    assert len(plan_clips(10_000, 17, max_clips=8)) == 8
    with pytest.raises(ValueError):
        plan_clips(10, 0)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (832, 480)), ((1080, 1920), (480, 832)), ((1000, 1000), (624, 624)), ((32, 30), (624, 624))],
)
def test_bucket_follows_aspect_ratio(size, expected):
    assert choose_bucket(*size, WAN_BUCKETS) == expected


def test_resize_covers_then_crops_the_centre_without_stretching():
    frames = np.zeros((2, 40, 80, 3), dtype=np.uint8)
    frames[:, :, 30:50] = 255  # a white vertical band in the middle third
    out = resize_center_crop(frames, 20, 20)  # scale 0.5 -> 40x20, crop columns 10..30
    assert out.shape == (2, 20, 20, 3)
    assert out[0, :, 5:15].min() >= 250 and out[0, :, :3].max() == 0 and out[0, :, -3:].max() == 0


def test_cut_clips_applies_policy_and_bucket():
    video = Video(np.random.default_rng(0).integers(0, 255, (40, 45, 80, 3), dtype=np.uint8), 8.0)
    clips = cut_clips(video, 17, [(32, 32), (64, 32)])
    assert len(clips) == 2 and all(c.frames.shape == (17, 32, 64, 3) for c in clips)
