"""Video decoding, fps resampling, MP4 writing and previews, on real files through PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reelforge.errors import UserInputError, VideoDecodeError
from reelforge.models.video_io import (
    Video,
    read_video,
    write_frame_strip,
    write_mp4,
    write_preview,
)
from tests.harness import gradient_video


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _write_with_codec(video: Video, path: Path, codec: str, pix_fmt: str = "yuv420p") -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(int(video.fps)))
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, pix_fmt
        stream.bit_rate = 8_000_000  # high enough that per-frame levels survive lossy codecs
        for array in video.frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _frame_levels(video: Video) -> list[int]:
    """Recover each frame's source index from its red channel (40 + 10 i in `gradient_video`)."""
    return [int(round((float(f[..., 0].mean()) - 40) / 10)) for f in video.frames]


def test_mp4_round_trip_keeps_frames_size_and_content(tmp_path: Path):
    source = gradient_video(num_frames=16, height=48, width=64, fps=16)
    decoded = read_video(write_mp4(source, tmp_path / "a.mp4"))
    assert (decoded.num_frames, decoded.height, decoded.width) == (16, 48, 64)
    assert decoded.fps == pytest.approx(16)
    assert _psnr(decoded.frames, source.frames) > 35


def test_written_mp4_is_h264(tmp_path: Path):
    path = write_mp4(gradient_video(num_frames=4), tmp_path / "a.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"


def test_written_mp4_is_tagged_bt709_and_its_colours_read_back(tmp_path: Path):
    """Players pick the YUV matrix from the tags; untagged, they guess (BT.709 for HD, BT.601 for SD)."""
    frames = np.zeros((4, 32, 64, 3), np.uint8)
    frames[:, :, :32] = (220, 40, 40)  # saturated colours, where the two matrices differ most
    frames[:, :, 32:] = (40, 180, 60)
    path = write_mp4(Video(frames, 8.0), tmp_path / "a.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tags = stream.codec_context
        assert (tags.colorspace, tags.color_primaries, tags.color_trc, tags.color_range) == (1, 1, 1, 1)
        frame = next(container.decode(stream))
        as_bt709 = frame.reformat(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG").to_ndarray()
        as_bt601 = frame.reformat(format="rgb24", src_colorspace="ITU601", src_color_range="MPEG").to_ndarray()
    assert np.abs(as_bt709[16, 8].astype(int) - (220, 40, 40)).max() <= 4
    assert np.abs(as_bt709[16, 56].astype(int) - (40, 180, 60)).max() <= 4
    assert np.abs(as_bt601[16, 8].astype(int) - (220, 40, 40)).max() > 10  # so the matrix really is BT.709
    assert np.abs(read_video(path).frames[0, 16, 8].astype(int) - (220, 40, 40)).max() <= 4


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".mov", "libx264"), (".mkv", "libx264"), (".webm", "libvpx-vp9"), (".mp4", "mpeg4")]
)
def test_reads_common_containers(tmp_path: Path, suffix: str, codec: str):
    source = gradient_video(num_frames=8, fps=8)
    decoded = read_video(_write_with_codec(source, tmp_path / f"clip{suffix}", codec))
    assert decoded.num_frames == 8 and (decoded.height, decoded.width) == (48, 64)
    assert _frame_levels(decoded) == list(range(8))


def test_downsampling_fps_keeps_every_other_frame(sample_mp4: Path):
    decoded = read_video(sample_mp4, fps=8)
    assert decoded.fps == 8 and decoded.num_frames == 8
    assert _frame_levels(decoded) == [0, 2, 4, 6, 8, 10, 12, 14]


def test_upsampling_fps_repeats_frames(tmp_path: Path):
    path = write_mp4(gradient_video(num_frames=4, fps=4), tmp_path / "slow.mp4")
    decoded = read_video(path, fps=8)
    assert decoded.num_frames == 8
    assert _frame_levels(decoded) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_max_frames_truncates(sample_mp4: Path):
    assert read_video(sample_mp4, max_frames=5).num_frames == 5


def test_odd_sizes_are_padded_to_even(tmp_path: Path):
    decoded = read_video(write_mp4(gradient_video(num_frames=3, height=33, width=45), tmp_path / "odd.mp4"))
    assert (decoded.height, decoded.width) == (34, 46)


def test_preview_gif_and_frame_strip(tmp_path: Path):
    video = gradient_video(num_frames=10, height=32, width=32)
    gif = Image.open(write_preview(video, tmp_path / "p.gif", max_side=64))
    assert gif.n_frames == 10 and gif.size == (64, 64)
    strip = Image.open(write_frame_strip(video, tmp_path / "s.png", count=4, max_side=32))
    assert strip.size == (4 * 32 + 3 * 2, 32)


class TestBadFiles:
    """Every unreadable input raises VideoDecodeError (a UserInputError) naming the file."""

    def _assert_rejected(self, path: Path, reason: str) -> None:
        with pytest.raises(VideoDecodeError) as info:
            read_video(path)
        assert str(path) in str(info.value)
        assert reason in info.value.reason
        assert isinstance(info.value, UserInputError)

    def test_missing_file(self, tmp_path: Path):
        self._assert_rejected(tmp_path / "nope.mp4", "does not exist")

    def test_zero_byte_file(self, tmp_path: Path):
        path = tmp_path / "empty.mp4"
        path.touch()
        self._assert_rejected(path, "empty")

    def test_text_file_named_mp4(self, tmp_path: Path):
        path = tmp_path / "notes.mp4"
        path.write_text("this is a caption, not a video\n" * 20)
        self._assert_rejected(path, "not a readable video")

    def test_random_bytes(self, tmp_path: Path):
        path = tmp_path / "garbage.mov"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        self._assert_rejected(path, "not a readable video")

    def test_audio_only_file(self, tmp_path: Path):
        path = tmp_path / "sound.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("aac", rate=16000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        self._assert_rejected(path, "no video stream")

    def test_directory(self, tmp_path: Path):
        self._assert_rejected(tmp_path, "not a regular file")

    def test_truncated_mp4_is_rejected_or_partial(self, tmp_path: Path, sample_mp4: Path):
        data = sample_mp4.read_bytes()
        cut = tmp_path / "cut.mp4"
        cut.write_bytes(data[: len(data) // 3])
        # An MP4 cut before its index cannot be opened at all: that must be a clear error, not a crash.
        self._assert_rejected(cut, "")


def test_video_rejects_wrong_frame_layout():
    with pytest.raises(ValueError, match="uint8"):
        Video(np.zeros((2, 8, 8, 3), dtype=np.float32), 8.0)
    with pytest.raises(ValueError, match="fps"):
        Video(np.zeros((2, 8, 8, 3), dtype=np.uint8), 0.0)
