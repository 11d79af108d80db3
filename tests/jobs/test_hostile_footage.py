"""Hostile and awkward footage: each file is accepted, or rejected with a named reason, and nothing
is written outside the work directory.

A zip bomb, a 10,000-member archive, folders nested 40 deep, a zero-length and a one-frame video, a truncated
file, `moov` at the end and at the front, audio only, 10-bit video, and a file over the size limit.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.jobs.archive_extraction import ArchiveBudget, extract_archive
from reelforge.jobs.footage_inventory import FootageRequirements, inventory_folder, inventory_source
from reelforge.jobs.footage_rejections import RejectReason
from reelforge.models.video_probe import probe_video
from reelforge.models.video_windows import decode_window

REQUIREMENTS = FootageRequirements(min_frames=17, min_width=32, min_height=32, fps=8.0)


def write_video(path: Path, seconds: float = 3.0, pix_fmt: str = "yuv420p", faststart: bool = False) -> Path:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(int(seconds * 30)):
            frame = np.full((48, 64, 3), (200, 80, 40), np.uint8)
            frame[:, i % 64] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rejected(inventory) -> dict[str, tuple[RejectReason, str]]:
    return {r.file: (r.reason, r.detail) for r in inventory.rejected}


def test_a_zip_bomb_member_is_refused_by_its_compression_ratio(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("clip.mp4", b"\0" * (64 << 20))  # 64 MB of zeros in about 64 KB
        zf.writestr("clip.txt", "a caption")
    assert archive.stat().st_size < 1 << 20
    refused = {r.file: r for r in extract_archive(archive, tmp_path / "out")}
    assert (
        refused["clip.mp4"].reason is RejectReason.ARCHIVE_BUDGET and "compression ratio" in refused["clip.mp4"].detail
    )
    assert not (tmp_path / "out" / "clip.mp4").exists()  # the partial copy is gone


def test_archive_totals_are_counted_as_bytes_arrive_not_as_declared(tmp_path):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(3):
            zf.writestr(f"v{i}.bin", np.random.default_rng(i).bytes(3 << 20))
    refused = extract_archive(archive, tmp_path / "out", ArchiveBudget(max_total_bytes=7 << 20))
    assert [(r.file, r.reason) for r in refused] == [("v2.bin", RejectReason.ARCHIVE_BUDGET)]
    assert "would pass" in refused[0].detail


def test_ten_thousand_members_and_deep_nesting_are_refused_by_name(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(10_000):
            zf.writestr(f"notes/{i}.md", "x")
        zf.writestr("/".join(["d"] * 40) + "/deep.mp4", "x")
        zf.writestr("../escape.txt", "x")
    refused = extract_archive(archive, tmp_path / "work" / "out", ArchiveBudget(max_members=5000))
    reasons = {r.file: (r.reason, r.detail) for r in refused}
    assert reasons["(archive)"] == (RejectReason.ARCHIVE_BUDGET, "5000 members past the first 5000 were not extracted")
    deep = next(name for name in reasons if name.endswith("deep.mp4"))
    assert reasons[deep][0] is RejectReason.ARCHIVE_BUDGET and "40 folders deep" in reasons[deep][1]
    assert reasons["../escape.txt"][0] is RejectReason.UNSAFE_ARCHIVE_MEMBER
    assert not (tmp_path / "work" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert len(list((tmp_path / "work" / "out" / "notes").iterdir())) == 5000


def test_awkward_videos_are_accepted_or_rejected_with_a_named_reason(tmp_path):
    root = tmp_path / "footage"
    root.mkdir()
    write_video(root / "moov_at_end.mp4")
    write_video(root / "moov_at_front.mp4", faststart=True)
    write_video(root / "ten_bit.mp4", pix_fmt="yuv420p10le")
    truncated = write_video(tmp_path / "whole.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(truncated[: len(truncated) // 2])
    write_video(root / "one_frame.mp4", seconds=1 / 30)  # a recording stopped at once: about zero seconds
    (root / "empty.mp4").write_bytes(b"")
    with av.open(str(root / "audio_only.mp4"), "w") as container:
        audio = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*audio.encode(frame), *audio.encode()]:
            container.mux(packet)
    write_video(root / "huge.mp4", seconds=12)
    for video in root.glob("*.mp4"):
        video.with_suffix(".txt").write_text(f"caption of {video.stem}")
    size_limit = (root / "huge.mp4").stat().st_size - 1
    inventory = inventory_folder(root, FootageRequirements(17, 32, 32, 8.0, max_file_bytes=size_limit))
    accepted = {a.file: a for a in inventory.accepted}
    assert set(accepted) == {"moov_at_end.mp4", "moov_at_front.mp4", "ten_bit.mp4"}
    assert accepted["ten_bit.mp4"].source["bit_depth"] == 10
    reasons = rejected(inventory)
    assert reasons["truncated.mp4"][0] is RejectReason.UNREADABLE and "not a readable" in reasons["truncated.mp4"][1]
    assert reasons["one_frame.mp4"] == (RejectReason.TOO_SHORT, "0 frames at 8 fps; needs 17")
    assert reasons["empty.mp4"] == (RejectReason.NOT_A_VIDEO, "file is empty (0 bytes)")
    assert reasons["audio_only.mp4"] == (RejectReason.UNREADABLE, "holds audio only, no video stream")
    assert reasons["huge.mp4"][0] is RejectReason.FILE_TOO_LARGE
    # 10-bit footage decodes to ordinary 8-bit RGB of the right colour.
    clip = decode_window(root / "ten_bit.mp4", probe_video(root / "ten_bit.mp4"), 0.5, 4, 8.0, (32, 32))
    assert clip.dtype == np.uint8 and np.abs(clip[:, :, :8].reshape(-1, 3).mean(0) - (200, 80, 40)).max() < 15


def test_long_and_oversized_videos_are_refused_before_decoding(tmp_path):
    root = tmp_path / "footage"
    root.mkdir()
    write_video(root / "long.mp4", seconds=4)
    (root / "long.txt").write_text("a caption")
    inventory = inventory_folder(root, FootageRequirements(17, 32, 32, 8.0, max_duration_s=3.0, max_pixels=10_000))
    assert rejected(inventory)["long.mp4"] == (RejectReason.TOO_LONG, "4.0 s; at most 3 s")
    inventory = inventory_folder(root, FootageRequirements(17, 32, 32, 8.0, max_pixels=1000))
    assert rejected(inventory)["long.mp4"][0] is RejectReason.TOO_MANY_PIXELS


def test_an_archive_source_applies_its_budget(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.mp4", b"\0" * (32 << 20))
    (tmp_path / "upload.zip").write_bytes(buffer.getvalue())
    inventory = inventory_source(tmp_path / "upload.zip", tmp_path / "work", REQUIREMENTS)
    assert rejected(inventory)["bomb.mp4"][0] is RejectReason.ARCHIVE_BUDGET


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mov"])
def test_garbage_with_a_video_name_is_unreadable_not_a_crash(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    (tmp_path / name).with_suffix(".txt").write_text("caption")
    assert rejected(inventory_folder(tmp_path, REQUIREMENTS))[name][0] is RejectReason.UNREADABLE
