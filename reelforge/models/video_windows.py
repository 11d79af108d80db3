"""Decode one window of a video at the model's frame rate and size, and nothing else.

The decoder seeks to the keyframe before the window, decodes forward, and converts only the frames
the window shows, straight to the bucket's size (FFmpeg's scaler resizes and turns 10-bit or 4:4:4
input into 8-bit RGB in one step). Memory is O(window frames x bucket pixels) whatever the source's
length or resolution. Frames are chosen by timestamp, so variable frame rate is resampled the way
a player shows it, and the container's display rotation is applied, so phone footage is upright.
HDR footage (PQ or HLG) is scaled at 16 bits and tone-mapped to SDR BT.709 (`hdr_to_sdr`).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from reelforge.models.hdr_to_sdr import hdr_to_sdr
from reelforge.models.video_io import VideoDecodeError
from reelforge.models.video_probe import VideoProbe

EPSILON_S = 1e-6


class _FrameConverter:
    """Turns decoded frames into (height, width, 3) uint8 display frames of the target size."""

    def __init__(self, probe: VideoProbe, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.quarter_turns = probe.rotation // 90
        scale = max(width / probe.display_width, height / probe.display_height)
        cover_w = max(width, round(probe.display_width * scale))
        cover_h = max(height, round(probe.display_height * scale))
        # The scaler works on stored frames: a quarter-turned video is scaled with its sides swapped.
        self.stored_size = (cover_h, cover_w) if self.quarter_turns % 2 else (cover_w, cover_h)
        # Area filtering when shrinking avoids aliasing; bicubic when growing.
        self.interpolation = "AREA" if scale < 1 else "BICUBIC"
        self.hdr_transfer = probe.hdr_transfer

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        stored_w, stored_h = self.stored_size
        # The scaler takes the YUV matrix and range from the frame's tags (BT.709, BT.2020, full range).
        scaled = frame.reformat(
            width=stored_w,
            height=stored_h,
            format="rgb48le" if self.hdr_transfer else "rgb24",
            interpolation=self.interpolation,
        ).to_ndarray()  # (stored_h, stored_w, 3) uint16 for HDR, else uint8
        rgb = hdr_to_sdr(scaled, self.hdr_transfer) if self.hdr_transfer else scaled  # (stored_h, stored_w, 3) uint8
        upright = np.rot90(rgb, k=self.quarter_turns) if self.quarter_turns else rgb  # counter-clockwise turns
        top = (upright.shape[0] - self.height) // 2
        left = (upright.shape[1] - self.width) // 2
        return upright[top : top + self.height, left : left + self.width]


def decode_window(
    path: str | Path, probe: VideoProbe, start_s: float, num_frames: int, fps: float, size: tuple[int, int]
) -> np.ndarray:
    """(num_frames, height, width, 3) uint8: what a player shows at start_s + k / fps, resized to cover
    `size` = (width, height) and centre-cropped; a VideoDecodeError if the window does not decode."""
    width, height = size
    convert = _FrameConverter(probe, width, height)
    instants = start_s + np.arange(num_frames) / fps  # (F,) seconds from the stream's start
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    filled = 0
    shown: av.VideoFrame | None = None  # the frame on screen until the next one's timestamp
    shown_rgb: np.ndarray | None = None

    def show_until(t: float) -> None:
        nonlocal filled, shown_rgb
        while filled < num_frames and instants[filled] < t - EPSILON_S:
            if shown_rgb is None:  # converted once, however many instants it covers
                shown_rgb = convert(shown)
            out[filled] = shown_rgb
            filled += 1

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            if start_s > 0:
                container.seek(int((start_s + origin) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = frame.time - origin
                if shown is None:
                    shown = frame  # the seek may land just after the first instant: show this frame from then
                show_until(t)
                if filled == num_frames:
                    break
                shown, shown_rgb = frame, None
            if shown is not None:
                show_until(float("inf"))  # the last frame stays on screen to the end
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(Path(path), f"window at {start_s:.2f}s does not decode ({exc})") from exc
    if filled < num_frames:
        raise VideoDecodeError(Path(path), f"no frames at {start_s:.2f}s (the file is shorter than it says)")
    return out
