"""Real footage, rendered here as real MP4s: a 60 s 640x360 30 fps edit with four hard cuts at known
times, a phone clip stored sideways with rotation metadata, and a variable-frame-rate clip.

Shots are found within one frame of each cut, every clip window lies inside one shot and its frames
all come from that shot, clips come from the whole duration, the rotated clip comes out upright,
the VFR clip is resampled to the model's fps by timestamp, and HDR clips (10-bit HEVC, BT.2020,
PQ or HLG, as phones record) come out in the SDR colours they show.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.jobs.clip_sampling import SamplingStrategy, plan_windows
from reelforge.jobs.shot_detection import detect_shots
from reelforge.models.hdr_to_sdr import BT2020_TO_BT709, REFERENCE_WHITE_NITS, nits_to_pq
from reelforge.models.video_probe import probe_video
from reelforge.models.video_windows import decode_window

CUTS_S = [7.4, 19.0, 33.6, 48.2]  # where the edit cuts (on frame boundaries at 30 fps)
SHOT_COLOURS = [(200, 40, 40), (40, 160, 60), (50, 60, 190), (210, 190, 40), (150, 60, 170)]


def shot_of(t: float) -> int:
    return sum(t >= cut for cut in CUTS_S)


def write_frames(path: Path, frames, size: tuple[int, int], rate: int = 30, rotation: int = 0) -> Path:
    """H.264 MP4 of an iterable of (H, W, 3) frames; `rotation` is stored as display-matrix metadata."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def edit(tmp_path_factory) -> Path:
    """60 s at 30 fps, 640x360: five shots of distinct colour, each with a bar moving across it."""

    def frames():
        for i in range(60 * 30):
            t = i / 30
            frame = np.empty((360, 640, 3), np.uint8)
            frame[:] = SHOT_COLOURS[shot_of(t)]
            x = int(t * 80) % 600
            frame[150:210, x : x + 40] = 255  # camera-like motion inside a shot, not a cut
            yield frame

    return write_frames(tmp_path_factory.mktemp("footage") / "edit.mp4", frames(), (640, 360))


@pytest.mark.slow  # the shared multi-shot edit takes seconds to render
def test_probe_reads_the_container_without_decoding_the_video(edit):
    probe = probe_video(edit)
    assert (probe.codec, probe.display_width, probe.display_height, probe.rotation) == ("h264", 640, 360, 0)
    assert probe.fps == pytest.approx(30.0) and not probe.variable_fps
    assert probe.duration_s == pytest.approx(60.0, abs=0.05) and probe.frame_count == 1800
    assert (probe.pix_fmt, probe.bit_depth, probe.has_audio) == ("yuv420p", 8, False)


@pytest.mark.slow  # the shared multi-shot edit takes seconds to render
def test_clip_windows_lie_inside_shots_found_within_a_frame_of_each_cut(edit):
    probe = probe_video(edit)
    shots = detect_shots(edit, probe)
    assert len(shots) == 5
    for shot, cut in zip(shots[1:], CUTS_S):
        assert shot.start_s == pytest.approx(cut, abs=1 / 30 + 1e-6)
    windows = plan_windows(probe.duration_s, 8.0, 17, max_clips=12, shots=shots, margin_s=1 / probe.fps)
    assert len(windows) == 12 and {w.shot for w in windows} == {0, 1, 2, 3, 4}
    assert windows[0].start_s < 5 and windows[-1].end_s > 55  # from across the whole duration
    for window in windows:
        clip = decode_window(edit, probe, window.start_s, 17, 8.0, (64, 32))
        assert clip.shape == (17, 32, 64, 3)
        expected = np.array(SHOT_COLOURS[window.shot])
        # The colour of the top rows (away from the moving bar) is the shot's in every frame.
        colours = clip[:, :8].reshape(17, -1, 3).mean(axis=1)  # (17, 3)
        assert np.abs(colours - expected).max() < 12, (window, colours.round())


def test_a_sideways_phone_clip_comes_out_upright(tmp_path):
    upright = np.zeros((64, 32, 3), np.uint8)  # portrait: bright top half, dark bottom half
    upright[:32] = 230
    stored = np.ascontiguousarray(np.rot90(upright, k=-1))  # the sensor's landscape frame
    path = write_frames(tmp_path / "phone.mp4", [stored] * 30, (64, 32), rotation=90)
    probe = probe_video(path)
    assert (probe.rotation, probe.display_width, probe.display_height) == (90, 32, 64)
    clip = decode_window(path, probe, 0.0, 8, 8.0, (16, 32))  # a portrait bucket
    top, bottom = clip[:, :12].mean(), clip[:, -12:].mean()
    assert top > 200 and bottom < 40


def test_variable_frame_rate_is_resampled_by_timestamp(tmp_path):
    pts_ms, t = [], 0
    for i in range(30):
        pts_ms.append(t)
        t += 100 if i % 3 == 0 else 33  # bursts and pauses, as phones record in low light
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1000, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 + 8 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    probe = probe_video(path)
    assert probe.variable_fps
    clip = decode_window(path, probe, 0.0, 12, 8.0, (64, 48))
    shown = [max(i for i, pts in enumerate(pts_ms) if pts <= k * 125) for k in range(12)]  # what a player shows
    assert [round((frame.mean() - 10) / 8) for frame in clip] == shown


def write_hdr_clip(path: Path, rgb16: np.ndarray, transfer: int, frames: int = 8) -> Path:
    """10-bit HEVC, BT.2020, tagged with `transfer` (FFmpeg's color_trc), of one (H, W, 3) uint16 RGB frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx265", rate=8, options={"preset": "ultrafast", "x265-params": "log-level=0:lossless=1"}
        )
        stream.width, stream.height, stream.pix_fmt = rgb16.shape[1], rgb16.shape[0], "yuv420p10le"
        context = stream.codec_context
        context.colorspace, context.color_primaries, context.color_trc, context.color_range = 9, 9, transfer, 1
        source = av.VideoFrame.from_ndarray(rgb16, format="rgb48le")
        for i in range(frames):
            frame = source.reformat(format="yuv420p10le", dst_colorspace="BT2020", dst_color_range="MPEG")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_hdr_phone_footage_comes_out_in_its_sdr_colours(tmp_path):
    """A PQ clip made from known SDR colours decodes back to them; read as SDR it would be washed out."""
    sdr = np.array([(200, 40, 40), (40, 160, 60), (50, 60, 190), (128, 128, 128)], np.float32)  # below the knee
    linear_bt2020 = ((sdr / 255) ** 2.4) @ np.linalg.inv(BT2020_TO_BT709).T  # (4, 3)
    pq = nits_to_pq(np.maximum(linear_bt2020, 0) * REFERENCE_WHITE_NITS)  # (4, 3) code values
    rgb16 = np.repeat(np.round(pq * 65535).astype(np.uint16), 16, axis=0).reshape(4, 16, 3)  # 4 stripes
    rgb16 = np.ascontiguousarray(np.repeat(rgb16, 16, axis=1).reshape(64, 16, 3).transpose(1, 0, 2))  # (16, 64, 3)
    path = write_hdr_clip(tmp_path / "hdr10.mp4", rgb16, transfer=16)
    probe = probe_video(path)
    assert (probe.hdr_transfer, probe.bit_depth, probe.to_dict()["hdr"]) == ("pq", 10, "pq")
    clip = decode_window(path, probe, 0.0, 4, 8.0, (64, 16))
    stripes = clip[:, 4:12].reshape(4, 8, 4, 16, 3)[:, :, :, 4:12].mean(axis=(0, 1, 3))  # (4, 3) stripe centres
    assert np.abs(stripes - sdr).max() < 8, stripes.round()

    grey = np.full((16, 64, 3), round(0.75 * 65535), np.uint16)  # HLG reference white (BT.2408)
    path = write_hdr_clip(tmp_path / "hlg.mp4", grey, transfer=18)
    probe = probe_video(path)
    assert probe.hdr_transfer == "hlg"
    assert abs(decode_window(path, probe, 0.0, 4, 8.0, (64, 16)).mean() - 245) < 6  # white, not 75% grey


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.mp4", b"", "empty"),
        ("noise.mp4", b"\x00\x01garbage" * 100, "not a readable video container"),
    ],
)
def test_unusable_files_are_named(tmp_path, name, content, reason):
    from reelforge.models.video_io import VideoDecodeError

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=reason):
        probe_video(path)


@pytest.mark.slow  # the shared multi-shot edit takes seconds to render
def test_head_sampling_is_still_available_for_comparison(edit):
    probe = probe_video(edit)
    head = plan_windows(probe.duration_s, 8.0, 17, max_clips=3, strategy=SamplingStrategy.HEAD)
    assert [round(w.start_s, 3) for w in head] == [0.0, 2.125, 4.25]


def test_ingest_lists_every_clips_source_and_none_spans_a_cut(ray_cluster, edit, tmp_path):
    from reelforge.jobs.ingest import MANIFEST_FILE, IngestConfig, ingest

    footage = tmp_path / "footage"
    footage.mkdir()
    (footage / "edit.mp4").symlink_to(edit)
    (footage / "edit.txt").write_text("five coloured shots with a white bar")
    report = ingest(IngestConfig("acme", "reelforge-tiny", footage, tmp_path / "out", max_clips_per_video=10))
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    sources = manifest["clip_sources"]
    assert report["clips"] == len(sources) == 10 and manifest["settings"]["sampling"] == "scene"
    assert {s["shot"] for s in sources} == {0, 1, 2, 3, 4} and {s["bucket"] for s in sources} == {"32x32"}
    for source in sources:
        assert source["file"] == "edit.mp4"
        assert all(not (source["start_s"] < cut < source["end_s"]) for cut in CUTS_S), source
    assert min(s["start_s"] for s in sources) < 5 and max(s["end_s"] for s in sources) > 55
