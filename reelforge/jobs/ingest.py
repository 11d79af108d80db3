"""Ingest a company's footage: validate, plan clips, decode them, encode on Ray Data, write latent shards.

    inventory (every file probed, accepted or rejected; nothing decoded whole)
    -> Ray Data, a task per video: probe, shots, clip windows      (clip_extraction.plan_video_clips)
    -> the driver caps the dataset, videos taking turns            (clip_sampling.cap_dataset)
    -> Ray Data, a task per window: decode it at the bucket's size (clip_extraction.decode_clip)
    -> VAE / text encoder in an actor pool (`map_batches`) -> one Parquet shard per video + manifest

A small job (a minute of footage, 32 clips) runs these steps in the driver process instead: Ray
Data's fixed start-up would cost it more than the parallelism saves.

Each video's shard is keyed by the hash of its bytes, its caption, the model, the settings and its
clip windows, so a re-run reuses every unchanged shard and re-encodes exactly the videos whose key
changed (a new caption re-encodes that one video, a new model re-encodes all). Every clip is
traceable: the manifest lists its source file, start and end time, shot and bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from reelforge.errors import UserInputError
from reelforge.jobs.clip_extraction import clip_rows, decode_clip_window, plan_video_clips
from reelforge.jobs.clip_sampling import ClipWindow, SamplingStrategy, cap_dataset
from reelforge.jobs.driver_node import on_driver_node
from reelforge.jobs.footage_inventory import (
    FootageInventory,
    FootageRequirements,
    inventory_source,
)
from reelforge.safety.face_consent import require_face_consent

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class IngestConfig:
    """One ingestion job: whose footage, for which model, where the shards go."""

    tenant: str
    model: str
    source: Path
    out_dir: Path
    strict: bool = False
    faces_need_consent: bool = True  # refuse videos that show faces without a declared consent
    max_clips_per_video: int = 8
    max_clips_per_dataset: int | None = None
    sampling: SamplingStrategy = SamplingStrategy.SCENE
    encode_batch: int = 4
    encoder_concurrency: int = 1
    # GPUs per encoder actor (None: one where this process sees a GPU) and the label resource it asks
    # for: from the cluster's declared training shape, so encoders also run on train nodes.
    encoder_num_gpus: float | None = None
    encoder_resources: dict[str, float] | None = None
    # Jobs this small run in the driver process: Ray Data's fixed start-up would cost more than it saves.
    local_max_footage_s: float = 60.0  # seconds of video to probe and scan for cuts
    local_max_clips: int = 32  # clips to decode and encode

    def __post_init__(self) -> None:
        if not TENANT_PATTERN.match(self.tenant):
            raise UserInputError(f"tenant {self.tenant!r} must be 2-63 lowercase letters, digits or dashes")
        if not 1 <= self.max_clips_per_video <= 1000:
            raise UserInputError(f"max_clips_per_video must be between 1 and 1000, got {self.max_clips_per_video}")
        if self.max_clips_per_dataset is not None and not 1 <= self.max_clips_per_dataset <= 1_000_000:
            raise UserInputError(
                f"max_clips_per_dataset must be between 1 and 1000000, got {self.max_clips_per_dataset}"
            )
        try:
            object.__setattr__(self, "sampling", SamplingStrategy(self.sampling))
        except ValueError:
            choices = ", ".join(s.value for s in SamplingStrategy)
            raise UserInputError(f"sampling {self.sampling!r} is not one of {choices}") from None


def _video_key(sha256: str, caption: str, settings_hash: str, windows: list[dict], hdr: str | None = None) -> str:
    plan = json.dumps(windows, sort_keys=True)
    # HDR footage is keyed by its tone mapping too, so shards decoded before it existed (washed out)
    # are encoded again; SDR footage keeps its keys.
    decode = f"\0hdr-{hdr}-bt2408" if hdr else ""
    return hashlib.sha256(f"{sha256}\0{caption}\0{settings_hash}\0{plan}{decode}".encode()).hexdigest()[:32]


class ClipEncoder:
    """Ray Data actor: loads the model once, encodes clip pixels and captions in batches."""

    def __init__(self, model: str, model_path: str | None) -> None:
        from reelforge.models.loading import load_model

        # The encoders only: a 14B transformer (two for A14B) would be loaded for nothing.
        self.model = load_model(model, model_path=model_path, with_denoiser=False)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        count = len(batch["key"])
        latents: list = [None] * count
        conditions: list = [None] * count  # image-to-video families that cache a first-frame condition
        # A batch can hold clips of several buckets; each shape is encoded as its own tensor.
        by_shape: dict[tuple, list[int]] = {}
        for i, frames in enumerate(batch["frames"]):
            by_shape.setdefault(tuple(frames.shape), []).append(i)
        with torch.no_grad():
            for indices in by_shape.values():
                frames = np.stack([batch["frames"][i] for i in indices])  # (b, F, H, W, 3) uint8
                pixels = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (b, 3, F, H, W)
                pixels = pixels.to(self.model.device)
                encoded = self.model.spec.encode_video(self.model.pipeline, pixels).float().cpu()
                condition = self.model.spec.encode_clip_condition(self.model.pipeline, pixels)
                for j, (i, z) in enumerate(zip(indices, encoded)):
                    latents[i] = z
                    conditions[i] = None if condition is None else condition[j].float().cpu()
            text = self.model.encode_text([str(c) for c in batch["caption"]]).float().cpu()  # (B, L, D)
        columns = {}
        if conditions[0] is not None:  # one family per job: every clip has one or none has
            columns = {
                "condition": [c.numpy().tobytes() for c in conditions],
                "condition_shape": [list(c.shape) for c in conditions],
            }
        return columns | {
            "key": batch["key"],
            "file": batch["file"],
            "clip": batch["clip"],
            "caption": batch["caption"],
            "start_s": batch["start_s"],
            "end_s": batch["end_s"],
            "shot": batch["shot"],
            "bucket": batch["bucket"],
            "latents": [z.numpy().tobytes() for z in latents],
            "latent_shape": [list(z.shape) for z in latents],
            "text_states": [t.numpy().tobytes() for t in text],
            "text_shape": [list(text.shape[1:])] * count,
        }


def _object_column(values: list) -> np.ndarray:
    """A 1-D object array of `values`, as Ray Data hands a batch column (arrays stay whole, not broadcast)."""
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def _encode_here(windows: list[dict], config: IngestConfig, model_path: str | None) -> dict[str, list[dict]]:
    """Decode and encode a small job's clips in this process: Ray Data's start-up would dominate it."""
    encoder = ClipEncoder(config.model, model_path)
    clips = [clip for row in windows for clip in decode_clip_window(row)]
    rows: dict[str, list[dict]] = {}
    for start in range(0, len(clips), config.encode_batch):
        chunk = clips[start : start + config.encode_batch]
        batch = {key: _object_column([c[key] for c in chunk]) for key in chunk[0]}
        encoded = encoder(batch)
        for i in range(len(chunk)):
            row = {key: values[i] for key, values in encoded.items()}
            rows.setdefault(row["key"], []).append(row)
    return rows


def footage_requirements(d) -> FootageRequirements:
    """What a clip needs for a model with defaults `d` (a ModelDefaults)."""
    # Clips are upscaled at most 2x into their bucket; smaller footage would be mostly interpolation.
    smallest_w, smallest_h = min(w for w, _ in d.training_buckets), min(h for _, h in d.training_buckets)
    return FootageRequirements(
        min_frames=min(d.training_frame_counts), min_width=smallest_w // 2, min_height=smallest_h // 2, fps=d.fps
    )


def ingest(config: IngestConfig, model_path: str | None = None) -> dict:
    """Run the job; returns the report (also written into the manifest)."""
    import ray
    import ray.data

    from reelforge.models.loading import describe_model

    started = time.perf_counter()
    # The driver only needs the model's defaults; weights load once per encoder actor.
    model = describe_model(config.model, model_path=model_path)
    d = model.defaults
    requirements = footage_requirements(d)
    inventory: FootageInventory = inventory_source(config.source, config.out_dir / "work", requirements)
    if config.faces_need_consent:
        require_face_consent((asdict(a) for a in inventory.accepted), str(config.source))
    if config.strict and inventory.rejected:
        first = inventory.rejected[0]
        raise UserInputError(
            f"--strict: {len(inventory.rejected)} file(s) rejected, first {first.file}: {first.reason.value}"
        )
    buckets = d.training_buckets
    settings = {
        "model": model.name,
        "model_dir": str(model.path),
        "fps": d.fps,
        "frames": d.num_frames,
        "frame_buckets": list(d.training_frame_counts),
        "buckets": [list(b) for b in buckets],
        "max_clips": config.max_clips_per_video,
        "max_clips_per_dataset": config.max_clips_per_dataset,
        "sampling": config.sampling.value,
        "max_text_tokens": d.max_text_tokens,
        # Only where a condition is cached, so other families' existing shards keep their keys; shards
        # written before conditions were cached are encoded again.
        **({"clip_condition": True} if model.spec.caches_clip_condition else {}),
    }
    settings_hash = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    shard_dir = config.out_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    videos = [
        {"file": a.file, "caption": a.caption, "sha256": a.sha256, "path": str(inventory.root / a.file)}
        for a in inventory.accepted
    ]
    plan_kwargs = {
        "fps": d.fps,
        "num_frames": d.training_frame_counts,
        "max_clips": config.max_clips_per_video,
        "strategy": config.sampling.value,
        "shots_dir": str(config.out_dir / "work" / "shots"),
    }
    if sum(a.duration_s for a in inventory.accepted) <= config.local_max_footage_s:
        planned = [plan_video_clips(video, **plan_kwargs) for video in videos]
    else:
        planned = (
            ray.data.from_items(videos).map(plan_video_clips, fn_kwargs=plan_kwargs, **on_driver_node()).take_all()
        )
    planned.sort(key=lambda v: v["file"])
    plans = [[ClipWindow(**w) for w in video["windows"]] for video in planned]
    if config.max_clips_per_dataset is not None:
        plans = cap_dataset(plans, config.max_clips_per_dataset)
    items = []
    for video, windows in zip(planned, plans):
        video["windows"] = [
            {"start_s": w.start_s, "num_frames": w.num_frames, "fps": w.fps, "shot": w.shot} for w in windows
        ]
        hdr = video["probe"].get("hdr_transfer")
        video["key"] = _video_key(video["sha256"], video["caption"], settings_hash, video["windows"], hdr)
        items.append(video)
    todo = [item for item in items if item["windows"] and not (shard_dir / f"{item['key']}.parquet").exists()]
    if todo:
        import torch

        windows = [row for item in todo for row in clip_rows(item, [ClipWindow(**w) for w in item["windows"]], buckets)]
        logger.info("decoding and encoding %d clips of %d videos", len(windows), len(todo))
        if len(windows) <= config.local_max_clips:
            rows = _encode_here(windows, config, model_path)
        else:
            dataset = (
                ray.data.from_items(windows)
                .flat_map(decode_clip_window, **on_driver_node())  # the footage is on this node's disk
                .map_batches(
                    ClipEncoder,
                    fn_constructor_kwargs={"model": config.model, "model_path": model_path},
                    batch_size=config.encode_batch,
                    concurrency=config.encoder_concurrency,
                    batch_format="numpy",
                    num_gpus=(1 if torch.cuda.is_available() else 0)
                    if config.encoder_num_gpus is None
                    else config.encoder_num_gpus,
                    resources=config.encoder_resources or None,
                )
            )
            rows = {}
            for batch in dataset.iter_batches(batch_format="pandas", batch_size=None):
                for row in batch.to_dict("records"):
                    rows.setdefault(row["key"], []).append(row)
        for key, clip_rows_of_video in rows.items():
            table = pa.Table.from_pylist(sorted(clip_rows_of_video, key=lambda r: r["clip"]))
            tmp = shard_dir / f".{key}.parquet.tmp"
            pq.write_table(table, tmp)
            tmp.replace(shard_dir / f"{key}.parquet")  # atomic: a crash never leaves half a shard
    current = {f"{item['key']}.parquet" for item in items}
    for stale in shard_dir.glob("*.parquet"):
        if stale.name not in current:  # a changed caption or video superseded this shard
            stale.unlink()
    shards = [f"shards/{item['key']}.parquet" for item in items if (shard_dir / f"{item['key']}.parquet").exists()]
    sources = [
        row
        for shard in shards
        for row in pq.read_table(
            config.out_dir / shard, columns=["file", "clip", "start_s", "end_s", "shot", "bucket"]
        ).to_pylist()
    ]
    dataset_hash = hashlib.sha256("".join(sorted(shards)).encode()).hexdigest()[:16]
    report = {
        "tenant": config.tenant,
        "model": model.name,
        "dataset_hash": dataset_hash,
        "accepted": [a.file for a in inventory.accepted],
        **{"rejected": inventory.report()["rejected"]},
        "clips": len(sources),
        "clip_sources": sources,
        "shards": len(shards),
        "encoded_videos": len(todo),
        "cache_hit": not todo,
        "seconds": round(time.perf_counter() - started, 2),
        "settings": settings,
    }
    (config.out_dir / MANIFEST_FILE).write_text(json.dumps({**report, "shard_files": shards}, indent=2))
    return report


def read_latents(out_dir: Path):
    """The ingested clips as a Ray Dataset (one row per clip), for training."""
    manifest = json.loads((out_dir / MANIFEST_FILE).read_text())
    return read_latent_shards(out_dir, manifest["shard_files"])


def read_latent_shards(out_dir: Path, shard_files: list[str]):
    """Some of the ingested shards (e.g. the training split) as a Ray Dataset.

    The shards are on this node's disk, and on a cluster whose nodes share no disk a Ray Data read
    task (or its Parquet footer reader) scheduled elsewhere finds no file. So this process reads
    each shard and hands it to the object store, which serves every node; one shard (one video's
    clips) is in this process's memory at a time.
    """
    import ray
    import ray.data

    refs = [ray.put(pq.read_table(out_dir / shard)) for shard in shard_files]
    return ray.data.from_arrow_refs(refs)


class LatentClip(NamedTuple):
    """One ingested clip as float32 tensors: what a training worker holds in memory."""

    latents: torch.Tensor  # (C, F', H', W')
    text: torch.Tensor  # (L, D)
    condition: torch.Tensor | None = None  # the family's cached first-frame condition, if it has one


def row_tensors(row: dict) -> LatentClip:
    """The tensors of one shard row."""
    import torch

    def tensor(data: bytes, shape: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(data, dtype=np.float32).reshape(shape).copy())

    condition = row.get("condition")
    return LatentClip(
        tensor(row["latents"], row["latent_shape"]),
        tensor(row["text_states"], row["text_shape"]),
        None if condition is None else tensor(condition, row["condition_shape"]),
    )


def decode_clip(out_dir: Path, file: str, clip: int = 0):
    """Decode one ingested clip's latents back to a Video with the manifest's model, for inspection."""
    import torch

    from reelforge.models.loading import load_model
    from reelforge.models.video_io import Video

    manifest_path = out_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise UserInputError(f"{out_dir} holds no ingestion manifest ({MANIFEST_FILE}); run `reelforge ingest` first")
    manifest = json.loads(manifest_path.read_text())
    for shard in manifest["shard_files"]:
        for row in pq.read_table(out_dir / shard).to_pylist():
            if row["file"] == file and row["clip"] == clip:
                model = load_model(manifest["settings"]["model_dir"], device="cpu", with_denoiser=False)
                latents = row_tensors(row).latents
                with torch.no_grad():
                    pixels = model.spec.decode_latents(model.pipeline, latents[None])[0]  # (3, F, H, W)
                frames = ((pixels.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
                return Video(frames, manifest["settings"]["fps"])
    raise UserInputError(f"no clip {clip} of {file!r} in {out_dir}; ingested files: {', '.join(manifest['accepted'])}")
