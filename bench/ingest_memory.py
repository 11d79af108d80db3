"""Peak memory of ingesting one long 1080p video: the bounded path, by length, beside the old one.

    python -m bench.ingest_memory [--minutes 1 2 4] [--old-seconds 10]

The bench renders 1080p 30 fps clips (hard cuts every 7 s, motion inside each shot) and, in a fresh
process per measurement, runs what one ingestion task does with a video for reelforge-tiny: probe,
find shots, plan 8 windows, decode each at the bucket's size, VAE + text encode. It prints each
process's peak RSS. The old path (decode every frame at source size, then stack) is measured on a
short clip and projected to the 1-minute clip by its bytes per frame: it cannot run at that length
on a 24 GB machine. Goal: the bounded peak stays flat in length and under 2.5 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from bench.report import save_result

WIDTH, HEIGHT, FPS = 1920, 1080, 30
SHOT_S = 7.0
COLOURS = [(200, 40, 40), (40, 160, 60), (50, 60, 190), (210, 190, 40), (150, 60, 170)]


def render(path: Path, seconds: float) -> Path:
    """A 1080p H.264 clip: a new colour every SHOT_S seconds and a bar moving across each shot."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        for i in range(int(seconds * FPS)):
            t = i / FPS
            frame[:] = COLOURS[int(t // SHOT_S) % len(COLOURS)]
            x = int(t * 300) % (WIDTH - 120)
            frame[400:680, x : x + 120] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bounded(path: str, work: str) -> dict:
    """One ingestion task's work on `path` (this process's peak RSS is the measurement)."""
    import torch

    from reelforge.jobs.clip_extraction import clip_rows, decode_clip_window, plan_video_clips
    from reelforge.jobs.clip_sampling import ClipWindow
    from reelforge.models.loading import load_model

    model = load_model("reelforge-tiny", device="cpu")
    d = model.defaults
    video = {"key": "", "file": Path(path).name, "caption": "shots", "sha256": Path(path).stem, "path": path}
    video = plan_video_clips(video, d.fps, d.num_frames, 8, "scene", work)
    windows = [ClipWindow(**w) for w in video["windows"]]
    clips = [c for row in clip_rows(video, windows, d.training_buckets) for c in decode_clip_window(row)]
    with torch.no_grad():
        for clip in clips:
            pixels = torch.from_numpy(clip["frames"][None]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
            model.spec.encode_video(model.pipeline, pixels)
    return {"clips": len(clips), "shots": len({c["shot"] for c in clips})}


def decode_everything(path: str, work: str) -> dict:
    """The old path: every frame at source size into a list, then one stacked array."""
    from reelforge.models.video_io import read_video

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the interpreter and its imports
    video = read_video(path, fps=8.0)
    return {"frames_kept": video.num_frames, "rss_before_decode_mb": round(before_mb, 1)}


def _measure(function: str, path: Path, work: Path) -> dict:
    """Run `function` in a fresh interpreter; its result plus its peak RSS in MB."""
    code = (
        "import json, resource, sys; from bench import ingest_memory as m; "
        f"r = m.{function}(sys.argv[1], sys.argv[2]); "
        "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1); print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(work)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    """Render the clips, measure each path, print and save the peaks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 4])
    parser.add_argument("--old-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("bench-output/ingest_memory.json"))
    args = parser.parse_args(argv)
    result: dict = {"bounded": {}, "decode_everything": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for minutes in args.minutes:
            clip = render(tmp / f"{minutes:g}min.mp4", minutes * 60)
            result["bounded"][f"{minutes:g} min"] = _measure("bounded", clip, tmp / "shots")
            clip.unlink()
        short = render(tmp / "short.mp4", args.old_seconds)
        old = _measure("decode_everything", short, tmp)
        baseline = _measure("bounded", short, tmp / "shots-short")
    # The old path's memory grows with the frames it decodes (every source frame, at source size,
    # held in a list and again in the stacked array): scale its measured growth to one minute.
    growth_mb = old["peak_rss_mb"] - old["rss_before_decode_mb"]
    projected_mb = old["rss_before_decode_mb"] + growth_mb * 60 / args.old_seconds
    result["decode_everything"] = {
        f"{args.old_seconds:g} s measured": old,
        "1 min projected_peak_rss_mb": round(projected_mb, 1),
        "bounded_on_the_same_short_clip": baseline,
    }
    first = result["bounded"][f"{args.minutes[0]:g} min"]["peak_rss_mb"]
    result["ratio_old_projected_over_bounded_1min"] = round(projected_mb / first, 1)
    result["bounded_peak_flat_in_length"] = round(max(v["peak_rss_mb"] for v in result["bounded"].values()) / first, 3)
    return save_result(result, args.out)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
