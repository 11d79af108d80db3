"""The analyzer reads freshly rendered clips correctly after an MP4 round trip (>= 98%)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reelforge.models.tiny.analyzer import analyze, shape_per_frame
from reelforge.models.tiny.brand_looks import BRAND_COLOURS, BRAND_KINDS, BrandLook
from reelforge.models.tiny.shapes_world import BACKGROUNDS, render_clip, sample_clip_spec
from reelforge.models.video_io import Video, read_video, write_mp4


@pytest.mark.slow
def test_accuracy_after_mp4_round_trip(tmp_path: Path):
    rng = np.random.default_rng(12345)  # not a seed pretraining or other tests use
    n, attribute_errors, brand_errors = 150, 0, 0
    for i in range(n):
        spec = sample_clip_spec(rng)
        video, _ = render_clip(spec)
        look = None
        if i % 2:
            look = BrandLook(
                BRAND_KINDS[rng.integers(len(BRAND_KINDS))], list(BRAND_COLOURS)[rng.integers(len(BRAND_COLOURS))]
            )
            video = look.apply(video)
        analysis = analyze(read_video(write_mp4(video, tmp_path / "clip.mp4")))
        attribute_errors += not all(analysis.matches(spec.combo).values())
        present = {kind for kind, reading in analysis.brands.items() if reading.present}
        expected = {look.kind} if look else set()
        brand_errors += present != expected or (look is not None and analysis.brands[look.kind].colour != look.colour)
    assert attribute_errors / n <= 0.02, f"{attribute_errors}/{n} clips misread"
    assert brand_errors / n <= 0.02, f"{brand_errors}/{n} brand looks misread"


def test_confidences_are_high_on_clean_clips():
    video, _ = render_clip(sample_clip_spec(np.random.default_rng(1)))
    analysis = analyze(video)
    for reading in (analysis.colour, analysis.direction, analysis.background):
        assert reading.confidence > 0.5
    assert all(not b.present and b.confidence < 0.1 for b in analysis.brands.values())


def test_blank_video_reads_no_object():
    blank = Video(np.full((17, 32, 32, 3), 128, dtype=np.uint8), 8.0)
    analysis = analyze(blank)
    assert analysis.background.value == "gray"
    assert analysis.colour.value is None and analysis.shape.value is None and analysis.direction.value is None


def test_static_object_has_no_direction():
    video, _ = render_clip(sample_clip_spec(np.random.default_rng(2)))
    still = Video(np.repeat(video.frames[:1], 17, axis=0), 8.0)
    assert analyze(still).direction.value is None


def test_several_brand_looks_are_told_apart():
    video, _ = render_clip(sample_clip_spec(np.random.default_rng(4)))
    for look in (BrandLook("border", "purple"), BrandLook("top-stripe", "lime"), BrandLook("corner-block", "orange")):
        video = look.apply(video)
    present = {k: b.colour for k, b in analyze(video).brands.items() if b.present}
    assert present == {"border": "purple", "top-stripe": "lime", "corner-block": "orange"}


def test_non_square_frames_are_refused():
    with pytest.raises(ValueError, match="square"):
        analyze(Video(np.zeros((3, 32, 48, 3), dtype=np.uint8), 8.0))


def test_shape_per_frame_reads_each_frame_alone():
    rng = np.random.default_rng(7)
    for shape in ("circle", "square", "triangle"):
        spec = sample_clip_spec(rng, ("red", shape, "left", "white"))
        video, _ = render_clip(spec)
        frames = video.frames.copy()
        assert shape_per_frame(frames, BACKGROUNDS["white"]) == [shape] * len(frames)
        frames[-1] = BACKGROUNDS["white"]  # the object leaves in the last frame
        assert shape_per_frame(frames, BACKGROUNDS["white"])[-1] is None
    blank = np.full((3, 32, 32, 3), 255, np.uint8)
    assert shape_per_frame(blank, BACKGROUNDS["white"]) == [None, None, None]
