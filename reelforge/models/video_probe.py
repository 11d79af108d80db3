"""What a video file holds, read from its container before anything is decoded.

A probe opens the container, reads the stream headers and decodes one frame (to learn the display
rotation, which FFmpeg carries as frame side data, and to prove the stream decodes at all). It never
holds more than that frame, so a 4K hour-long upload costs the same to probe as a short clip, and
limits (`FootageLimits`) can refuse it with a named reason before any real decoding starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import ColorTrc

from reelforge.models.video_io import VideoDecodeError, open_container

VFR_TOLERANCE = 0.01  # relative gap between average and nominal frame rate that marks variable frame rate
HDR_TRANSFERS = {ColorTrc.SMPTE2084: "pq", ColorTrc.ARIB_STD_B67: "hlg"}  # FFmpeg's color_trc: HDR10, HLG


@dataclass(frozen=True)
class VideoProbe:
    """Container facts about one video stream; sizes are as stored, `display_*` after rotation."""

    codec: str
    width: int
    height: int
    rotation: int  # degrees counter-clockwise a player turns the stored frames: 0, 90, 180 or 270
    fps: float  # average frame rate over the stream
    variable_fps: bool
    duration_s: float
    frame_count: int  # from the container when it says, else duration x fps
    pix_fmt: str
    bit_depth: int
    has_audio: bool
    file_bytes: int
    hdr_transfer: str | None = None  # "pq" or "hlg" for HDR footage (tone-mapped to SDR when decoded)

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_dict(self) -> dict:
        """The facts a report shows."""
        return {
            "codec": self.codec,
            "width": self.display_width,
            "height": self.display_height,
            "rotation": self.rotation,
            "fps": round(self.fps, 3),
            "variable_fps": self.variable_fps,
            "duration_s": round(self.duration_s, 3),
            "frames": self.frame_count,
            "pix_fmt": self.pix_fmt,
            "bit_depth": self.bit_depth,
            "hdr": self.hdr_transfer,
        }


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def normalise_rotation(degrees: float) -> int:
    """A display-matrix angle (-180..180, counter-clockwise) as 0, 90, 180 or 270."""
    return int(round(degrees / 90.0)) % 4 * 90


def probe_video(path: str | Path) -> VideoProbe:
    """The container facts of `path`; a VideoDecodeError names what makes it unusable."""
    path = Path(path)
    with open_container(path) as container:
        size = path.stat().st_size
        if not container.streams.video:
            has_audio = bool(container.streams.audio)
            raise VideoDecodeError(path, "holds audio only, no video stream" if has_audio else "holds no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        average = float(stream.average_rate or 0) or None
        nominal = float(stream.base_rate or stream.guessed_rate or 0) or None
        duration = _seconds(stream.duration, stream.time_base)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(path, f"video stream does not decode ({exc})") from exc
        if first is None:
            raise VideoDecodeError(path, "video stream has no decodable frames")
        fps = average or nominal
        if not fps:
            raise VideoDecodeError(path, "container gives no frame rate")
        if not duration or duration <= 0:
            raise VideoDecodeError(path, "container gives no duration (zero-length or unfinished recording)")
        frame_count = stream.frames or int(round(duration * fps))
        pix_fmt = context.pix_fmt or first.format.name
        return VideoProbe(
            codec=context.name,
            width=context.width or first.width,
            height=context.height or first.height,
            rotation=normalise_rotation(first.rotation or 0),
            fps=fps,
            variable_fps=bool(average and nominal and abs(average - nominal) / nominal > VFR_TOLERANCE),
            duration_s=duration,
            frame_count=frame_count,
            pix_fmt=pix_fmt,
            bit_depth=max((c.bits for c in av.VideoFormat(pix_fmt).components), default=8),
            has_audio=bool(container.streams.audio),
            file_bytes=size,
            hdr_transfer=HDR_TRANSFERS.get(first.color_trc),
        )
