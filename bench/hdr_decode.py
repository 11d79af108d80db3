"""What tone-mapping HDR footage costs at ingest: one window decoded from an HDR clip and from its SDR twin.

    python -m bench.hdr_decode [--seconds 4] [--rounds 3]

The two files are the same 1080p 10-bit HEVC stream (BT.2020, 30 fps, a bar moving over coloured
shots) and differ only in the transfer they are tagged with: HLG, or BT.2020's SDR curve. So the
ratio is exactly the HDR path's cost: scaling at 16 bits instead of 8, and `hdr_to_sdr` per frame
at the bucket's size. Each round decodes an 81-frame window at 832x480 (Wan's bucket) from each,
alternating, and the median of the per-round ratios is reported, since this machine drifts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorTrc

from bench.report import save_result
from reelforge.models.video_probe import probe_video
from reelforge.models.video_windows import decode_window

WIDTH, HEIGHT, FPS = 1920, 1080, 30
BUCKET, WINDOW_FRAMES, MODEL_FPS = (832, 480), 81, 16.0
COLOURS = [(200, 40, 40), (40, 160, 60), (50, 60, 190), (210, 190, 40)]


def render(path: Path, seconds: float, transfer: int) -> Path:
    """10-bit HEVC at 1080p, BT.2020, tagged with `transfer`: shots of colour with a moving bar."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx265", rate=FPS, options={"preset": "ultrafast", "x265-params": "log-level=0"}
        )
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p10le"
        context = stream.codec_context
        context.colorspace, context.color_primaries, context.color_trc, context.color_range = 9, 9, transfer, 1
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint16)
        for i in range(int(seconds * FPS)):
            t = i / FPS
            frame[:] = np.array(COLOURS[int(t) % len(COLOURS)], np.uint16) * 200  # (3,) 16-bit code values
            x = int(t * 300) % (WIDTH - 120)
            frame[400:680, x : x + 120] = 50000
            rgb = av.VideoFrame.from_ndarray(frame, format="rgb48le")
            yuv = rgb.reformat(format="yuv420p10le", dst_colorspace="BT2020", dst_color_range="MPEG")
            yuv.pts = i
            for packet in stream.encode(yuv):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def time_window(path: Path) -> float:
    """Seconds to probe `path` and decode one window at the bucket's size."""
    started = time.perf_counter()
    probe = probe_video(path)
    decode_window(path, probe, 0.0, WINDOW_FRAMES, MODEL_FPS, BUCKET)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    """Render both files, time alternating rounds, save bench-output/hdr_decode.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length (a window needs 5.1 s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-output/hdr_decode.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reelforge-hdr-") as tmp:
        hdr = render(Path(tmp) / "hlg.mp4", args.seconds, ColorTrc.ARIB_STD_B67)
        sdr = render(Path(tmp) / "sdr.mp4", args.seconds, ColorTrc.BT2020_10)
        if (probe_video(hdr).hdr_transfer, probe_video(sdr).hdr_transfer) != ("hlg", None):
            raise SystemExit("the HLG file did not probe as HDR, or its SDR twin did")
        time_window(sdr)  # warm the decoder and page cache for both
        time_window(hdr)
        rounds = []
        for _ in range(args.rounds):
            sdr_s, hdr_s = time_window(sdr), time_window(hdr)
            rounds.append({"sdr_s": round(sdr_s, 3), "hdr_s": round(hdr_s, 3), "ratio": round(hdr_s / sdr_s, 3)})
    result = {
        "source": f"{WIDTH}x{HEIGHT} {FPS} fps 10-bit HEVC",
        "window": f"{WINDOW_FRAMES} frames at {BUCKET[0]}x{BUCKET[1]}, {MODEL_FPS:g} fps",
        "rounds": rounds,
        "median_ratio_hdr_over_sdr": statistics.median(r["ratio"] for r in rounds),
    }
    return save_result(result, args.out)


if __name__ == "__main__":
    main()
