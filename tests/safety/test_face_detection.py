"""The face detector on real photographs and on the shapes world, and its scans of frames and files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reelforge.models.tiny.shapes_world import render_clip, sample_clip_spec
from reelforge.models.video_io import Video, write_mp4
from reelforge.models.video_probe import probe_video
from reelforge.safety.face_detection import FaceBox, FaceDetector, shared_detector
from tests.faces import ASTRONAUT_FACE, astronaut, lfw_faces, portrait_video, write_portrait_mp4


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return shared_detector()


def _overlap(box: FaceBox, x: int, y: int, w: int, h: int) -> float:
    width = min(box.x + box.width, x + w) - max(box.x, x)
    height = min(box.y + box.height, y + h) - max(box.y, y)
    return max(0, width) * max(0, height) / (w * h)


def test_the_portraits_face_is_found_where_it_is(detector):
    (face,) = detector.faces(astronaut())
    assert _overlap(face, *ASTRONAUT_FACE) > 0.7, face


@pytest.mark.parametrize("side", [32, 48, 96])
def test_a_face_filling_a_small_frame_is_found(detector, side):
    """Frames as small as the tiny model's are enlarged before the cascade's 24 px window scans them."""
    crop = Image.fromarray(astronaut()).crop((130, 30, 310, 210)).resize((side, side), Image.BICUBIC)
    assert len(detector.faces(np.asarray(crop))) == 1


@pytest.mark.slow
def test_most_lfw_faces_are_found(detector):
    found = sum(bool(detector.faces(face)) for face in lfw_faces(40))
    assert found >= 28, f"{found} of 40 25x25 LFW faces"


@pytest.mark.slow
def test_shapes_world_clips_show_no_face(detector):
    """Plain shapes on plain backgrounds (circles included, which fewer neighbours took for faces)."""
    rng = np.random.default_rng(5)
    scans = [
        detector.scan_frames(render_clip(sample_clip_spec(rng, frame_size=side))[0].frames, 8.0, 4)
        for side in [32, 48, 64] * 20
    ]
    assert [s.summary() for s in scans if s.shows_faces] == []


def test_a_video_scan_says_when_faces_show(detector):
    video = portrait_video(num_frames=16)
    blank = Video(np.full((16, 96, 96, 3), 200, np.uint8), 8.0)
    mixed = Video(np.concatenate([blank.frames[:8], video.frames[8:]]), 8.0)
    scan = detector.scan_frames(mixed.frames, mixed.fps, max_instants=16)
    assert scan.instants_scanned == 16 and scan.shows_faces
    assert min(scan.face_instants_s) >= 1.0  # the face appears at frame 8, one second in
    assert 0.2 < scan.largest_face_fraction < 0.8
    assert "faces in" in scan.summary() and not detector.scan_frames(blank.frames, 8.0).shows_faces


def test_a_file_is_scanned_a_frame_at_a_time_at_evenly_spaced_instants(detector, tmp_path):
    portrait = write_portrait_mp4(tmp_path / "portrait.mp4", size=160, num_frames=40)
    scan = detector.scan_file(portrait, probe_video(portrait), max_instants=6)
    assert scan.instants_scanned == 6 and len(scan.face_instants_s) >= 4, scan.summary()
    assert scan.face_instants_s == tuple(sorted(scan.face_instants_s)) and max(scan.face_instants_s) < 5.0
    plain = write_mp4(render_clip(sample_clip_spec(np.random.default_rng(0), frame_size=64))[0], tmp_path / "s.mp4")
    assert not detector.scan_file(plain, probe_video(plain)).shows_faces


@pytest.mark.slow
def test_reelforge_tiny_outputs_show_no_face(detector):
    """The output the cascade alone took for a face (a red disk, in 1 of 8 frames), and its neighbours:
    a painted, saturated blob is refused by its colour, skin never is."""
    from reelforge.models.loading import load_model
    from reelforge.models.sampling import GenerationSettings, generate
    from reelforge.safety.face_detection import _painted

    model = load_model("reelforge-tiny", device="cpu")
    prompt = "a red circle moving left on a white background"
    for seed in range(4):
        video = generate(model, GenerationSettings(prompt, seed=seed, num_frames=9, width=32, height=32))
        assert not detector.scan_frames(video.frames, video.fps, 8).shows_faces, seed
    import cv2

    disk = np.zeros((32, 32, 3), np.uint8)
    disk[8:24, 8:24] = (220, 30, 30)
    assert _painted(disk, FaceBox(6, 6, 20, 20), cv2) and not _painted(astronaut(), FaceBox(*ASTRONAUT_FACE), cv2)
