"""Video files in and out, on PyAV: decode with fps resampling, H.264 MP4, previews.

Frames travel through reelforge as `Video`: uint8 RGB (F, H, W, 3) plus a frame rate.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

from reelforge.errors import VideoDecodeError

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".m4v", ".avi")


@dataclass(frozen=True)
class Video:
    """Decoded RGB frames (F, H, W, 3) uint8 and their frame rate."""

    frames: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"Video frames must be uint8 (F, H, W, 3), got {self.frames.dtype} {self.frames.shape}")
        if not self.fps > 0:
            raise ValueError(f"Video fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Seconds of playback."""
        return self.num_frames / self.fps


def open_container(path: Path):
    """The opened container of `path`; a VideoDecodeError names why a file is not one."""
    if not path.exists():
        raise VideoDecodeError(path, "file does not exist")
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoDecodeError(path, f"not a readable video container ({exc.__class__.__name__}: {exc})") from exc


def read_video(path: str | Path, fps: float | None = None, max_frames: int | None = None) -> Video:
    """Decode every frame of `path` to RGB, resampled to `fps` when given.

    Resampling keeps, for each output instant k / fps, the last source frame shown at that instant,
    which is what a player would display; it drops frames to go down and repeats them to go up.
    """
    path = Path(path)
    with open_container(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(path, "contains no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source_fps = float(stream.average_rate or stream.guessed_rate or 0) or None
        frames: list[np.ndarray] = []
        times: list[float] = []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / (source_fps or 1.0))
        except av.error.FFmpegError as exc:
            if not frames:
                raise VideoDecodeError(path, f"video stream is corrupt ({exc})") from exc
            # A truncated tail is common in real uploads; keep what decoded and say so.
            logger.warning("%s: stopped decoding after %d frames: %s", path, len(frames), exc)
    if not frames:
        raise VideoDecodeError(path, "video stream has no decodable frames")
    if source_fps is None:
        source_fps = _fps_from_times(times)
    video = Video(np.stack(frames), source_fps)
    if fps is not None and abs(fps - source_fps) > 1e-6:
        video = resample_fps(video, times, fps)
    if max_frames is not None:
        video = Video(video.frames[:max_frames], video.fps)
    return video


def _fps_from_times(times: list[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 1.0
    return (len(times) - 1) / (times[-1] - times[0])


def resample_fps(video: Video, times: list[float], fps: float) -> Video:
    """Pick, for each instant k / fps within the clip, the latest source frame at or before it."""
    if fps <= 0:
        raise ValueError(f"target fps must be positive, got {fps}")
    t = np.asarray(times, dtype=np.float64) - times[0]  # (F_src,)
    duration = t[-1] + 1.0 / video.fps
    n_out = max(1, int(np.floor(duration * fps + 1e-6)))
    instants = np.arange(n_out) / fps  # (F_out,)
    index = np.searchsorted(t, instants + 1e-6, side="right") - 1
    index = np.clip(index, 0, len(t) - 1)
    return Video(video.frames[index], fps)


def write_mp4(video: Video, path: str | Path, crf: int = 18, metadata: dict[str, str] | None = None) -> Path:
    """Encode H.264 (yuv420p, playable everywhere) at the video's fps; returns the path.

    yuv420p needs even sides, so an odd width or height is padded by repeating the last row/column.
    `metadata` becomes container tags under their own keys (e.g. the `AIGC` label), kept in `moov`.
    Colour is BT.709, limited range, and tagged so: an untagged file leaves the matrix to the player,
    and players guess BT.709 for HD and BT.601 for SD, which shifts saturated (brand) colours.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _pad_to_even(video.frames)
    rate = Fraction(video.fps).limit_denominator(1001)
    # use_metadata_tags: the mp4 muxer otherwise writes only the iTunes keys it knows.
    options = {"movflags": "use_metadata_tags"} if metadata else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=rate)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        stream.codec_context.colorspace = Colorspace.ITU709
        stream.codec_context.color_primaries = ColorPrimaries.BT709
        stream.codec_context.color_trc = ColorTrc.BT709
        stream.codec_context.color_range = ColorRange.MPEG
        for array in frames:
            rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame = rgb.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def mp4_bytes(video: Video, metadata: dict[str, str] | None = None) -> bytes:
    """The H.264 MP4 of `video` as bytes (written through a temporary file: the muxer seeks)."""
    with tempfile.TemporaryDirectory(prefix="reelforge-mp4-") as tmp:
        return write_mp4(video, Path(tmp) / "video.mp4", metadata=metadata).read_bytes()


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    pad_h = frames.shape[1] % 2
    pad_w = frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_preview(video: Video, path: str | Path, max_side: int = 256) -> Path:
    """Looping animated GIF (what MLflow's UI and most chat tools show inline); upscales tiny videos."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [_resize_for_display(Image.fromarray(f), max_side) for f in video.frames]
    duration_ms = max(20, int(round(1000.0 / video.fps)))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def write_frame_strip(video: Video, path: str | Path, count: int = 8, max_side: int = 128) -> Path:
    """One PNG of `count` evenly spaced frames side by side, for a person to look at."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    index = np.linspace(0, video.num_frames - 1, num=min(count, video.num_frames)).round().astype(int)
    tiles = [_resize_for_display(Image.fromarray(video.frames[i]), max_side) for i in index]
    gap = 2
    strip = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), tiles[0].height), "black")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + gap
    strip.save(path)
    return path


def _resize_for_display(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if abs(scale - 1.0) < 1e-6:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Nearest keeps tiny synthetic frames crisp instead of blurring them when upscaled.
    return image.resize(size, Image.NEAREST if scale > 1 else Image.BILINEAR)
