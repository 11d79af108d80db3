"""Ingestion throughput: the Ray Data path against a plain single-process loop, same files, one run.

    python -m bench.ingest_throughput --clips 24

Both start cold (no shard cache) and do the same work per video: probe, find shots, plan windows,
decode each window at its bucket's size, VAE + text encode, write a Parquet shard. Reported as
clips/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from bench.report import save_result
from reelforge.jobs.clip_extraction import clip_rows, decode_clip_window, plan_video_clips
from reelforge.jobs.clip_sampling import ClipWindow
from reelforge.jobs.footage_inventory import FootageRequirements, inventory_folder
from reelforge.jobs.ingest import IngestConfig, ingest
from reelforge.jobs.ray_cluster import ensure_ray
from reelforge.models.loading import load_model
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings


def plain_loop(source: Path, out: Path, model_name: str, batch: int) -> int:
    """The baseline: one process, no Ray; returns clips written."""
    model = load_model(model_name, device="cpu")
    d = model.defaults
    inventory = inventory_folder(source, FootageRequirements(d.num_frames, d.width // 2, d.height // 2, d.fps))
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for accepted in inventory.accepted:
        video = {"key": "", "file": accepted.file, "caption": accepted.caption, "sha256": accepted.sha256}
        video = plan_video_clips(
            {**video, "path": str(source / accepted.file)}, d.fps, d.num_frames, 8, "scene", str(out / "shots")
        )
        windows = [ClipWindow(**w) for w in video["windows"]]
        clips = [clip for row in clip_rows(video, windows, [(d.width, d.height)]) for clip in decode_clip_window(row)]
        rows = []
        for start in range(0, len(clips), batch):
            chunk = clips[start : start + batch]
            pixels = torch.from_numpy(np.stack([c["frames"] for c in chunk])).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
            with torch.no_grad():
                latents = model.spec.encode_video(model.pipeline, pixels)
                text = model.encode_text([accepted.caption] * len(chunk))
            rows += [
                {"latents": z.numpy().tobytes(), "text_states": t.numpy().tobytes()} for z, t in zip(latents, text)
            ]
        pq.write_table(pa.Table.from_pylist(rows), out / f"{Path(accepted.file).stem}.parquet")
        total += len(rows)
    return total


def main(argv: list[str] | None = None) -> dict:
    """Run both paths on the same footage and print clips/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--model", default="reelforge-tiny")
    parser.add_argument("--out", type=Path, default=Path("bench-output/ingest_throughput.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the Ray workers each get one thread too: same per-worker compute
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_footage(tmp / "footage", count=args.clips, seed=0)
        ensure_ray(Settings(home=tmp / "home"))
        started = time.perf_counter()
        report = ingest(IngestConfig("bench", args.model, tmp / "footage", tmp / "ray-out"))
        ray_seconds = time.perf_counter() - started
        started = time.perf_counter()
        plain_clips = plain_loop(tmp / "footage", tmp / "plain-out", args.model, batch=4)
        plain_seconds = time.perf_counter() - started
    result = {
        "clips": report["clips"],
        "ray_data_clips_per_s": report["clips"] / ray_seconds,
        "plain_loop_clips_per_s": plain_clips / plain_seconds,
        "ratio_ray_over_plain": (report["clips"] / ray_seconds) / (plain_clips / plain_seconds),
        "ray_seconds": ray_seconds,
        "plain_seconds": plain_seconds,
    }
    return save_result(result, args.out)


if __name__ == "__main__":
    main()
