"""The data of a fine-tune: ingested latents (ingesting raw footage first), checked, split by video.

Everything here runs in the driver before any worker starts, so a wrong path, another tenant's
dataset or a model mismatch fails in seconds with a message that names the problem.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from reelforge.errors import UserInputError
from reelforge.jobs.finetune_config import FineTuneConfig
from reelforge.jobs.ingest import MANIFEST_FILE, IngestConfig, ingest
from reelforge.models.loading import ModelDescription
from reelforge.settings import Settings

logger = logging.getLogger(__name__)


class TrainingDataError(UserInputError):
    """The fine-tune's data is missing, empty, belongs to another tenant or another model."""

    code = "invalid_training_data"


@dataclass(frozen=True)
class TrainingData:
    """Ingested clips of one tenant, split into training and held-out videos."""

    root: Path  # the ingestion output directory (manifest + shards)
    manifest: dict
    train_shards: list[str]  # paths relative to root
    holdout_shards: list[str]
    clips_per_shard: dict[str, int]
    files_per_shard: dict[str, str]
    ingested_now: bool

    @property
    def dataset_hash(self) -> str:
        return self.manifest["dataset_hash"]

    @property
    def train_clips(self) -> int:
        return sum(self.clips_per_shard[s] for s in self.train_shards)

    @property
    def holdout_clips(self) -> int:
        return sum(self.clips_per_shard[s] for s in self.holdout_shards)

    def with_holdout(self, validation: TrainingData) -> TrainingData:
        """This data's training split, held out against every clip of `validation` (a separate dataset).

        Its shards are kept as absolute paths, which `root / shard` leaves as they are.
        """
        shards = [str(validation.root / s) for s in validation.train_shards + validation.holdout_shards]
        clips = {str(validation.root / s): n for s, n in validation.clips_per_shard.items()}
        files = {str(validation.root / s): f"validation/{f}" for s, f in validation.files_per_shard.items()}
        return dataclasses.replace(
            self,
            train_shards=self.train_shards + self.holdout_shards,
            holdout_shards=shards,
            clips_per_shard=self.clips_per_shard | clips,
            files_per_shard=self.files_per_shard | files,
        )

    def rows_summary(self) -> list[dict]:
        """(file, clips, split) per video, for the MLflow dataset input."""
        split = {s: "train" for s in self.train_shards} | {s: "holdout" for s in self.holdout_shards}
        return [
            {"file": self.files_per_shard[s], "shard": s, "clips": self.clips_per_shard[s], "split": split[s]}
            for s in sorted(split)
        ]


def ingested_dir_for(settings: Settings, tenant: str, source: Path) -> Path:
    """Where raw footage from `source` is ingested for `tenant`: stable, so re-runs hit the cache."""
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return settings.home / "datasets" / tenant / key


def split_holdout(shards: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, holdout) by whole videos: held-out clips never share a video with training clips."""
    ordered = sorted(shards)
    if fraction <= 0 or len(ordered) < 2:
        return ordered, []
    count = min(len(ordered) - 1, max(1, round(fraction * len(ordered))))
    order = np.random.default_rng(seed).permutation(len(ordered))
    holdout = {ordered[i] for i in order[:count]}
    return [s for s in ordered if s not in holdout], sorted(holdout)


def prepare_training_data(
    config: FineTuneConfig, settings: Settings, model: ModelDescription, model_path: str | None
) -> TrainingData:
    """Check the data, ingest raw footage (cached), split it; raise TrainingDataError on any mismatch."""
    source = config.data.expanduser()
    if not source.exists():
        raise TrainingDataError(
            f"data {source} does not exist; give a footage folder, an archive, or an ingested directory"
        )
    ingested_now = False
    if source.is_dir() and (source / MANIFEST_FILE).is_file():
        root = source
    else:
        from reelforge.jobs.ray_cluster import ensure_ray

        ensure_ray(settings)  # ingestion runs on Ray Data
        root = ingested_dir_for(settings, config.tenant, source)
        logger.info("ingesting %s for %s into %s", source, config.tenant, root)
        import ray

        from reelforge.jobs.training_placement import ClusterShape, plan_training_placement

        shape = ClusterShape(
            int(ray.cluster_resources().get("GPU", 0)), settings.train_node_gpus, settings.train_node_resource
        )
        encoders = plan_training_placement(1, config.use_gpu, shape)  # encoders go where workers go
        ingest_config = IngestConfig(
            config.tenant,
            config.model,
            source,
            root,
            faces_need_consent=config.faces_need_consent,
            encoder_num_gpus=1 if encoders.use_gpu else 0,
            encoder_resources={k: v for k, v in encoders.resources_per_worker.items() if k != "CPU"},
        )
        report = ingest(ingest_config, model_path=model_path)
        ingested_now = True
        if report["clips"] == 0:
            reasons = "; ".join(f"{r['file']}: {r['reason']}" for r in report["rejected"][:5]) or "no video files found"
            raise TrainingDataError(f"no usable clips in {source} ({reasons})")
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    if manifest.get("tenant") != config.tenant:
        # Say whose it is only as "another tenant": the owner's name is not this tenant's business.
        raise TrainingDataError(
            f"dataset {root} was not ingested for tenant {config.tenant!r}; ingest your own footage with `reelforge ingest --tenant {config.tenant}`"
        )
    if manifest.get("model") != model.name or Path(manifest["settings"]["model_dir"]).resolve() != model.path.resolve():
        raise TrainingDataError(
            f"dataset {root} holds latents of model {manifest.get('model')!r} ({manifest['settings']['model_dir']}); "
            f"this job trains {model.name!r} ({model.path}): ingest the footage again for it"
        )
    shards = list(manifest["shard_files"])
    if not shards:
        raise TrainingDataError(f"dataset {root} holds no clips")
    clips, files = {}, {}
    for shard in shards:
        path = root / shard
        if not path.is_file():
            raise TrainingDataError(f"dataset {root} is incomplete: {shard} is missing; run the ingestion again")
        clips[shard] = pq.read_metadata(path).num_rows
        files[shard] = pq.read_table(path, columns=["file"]).column("file")[0].as_py()
    train, holdout = split_holdout(shards, config.holdout_fraction, config.seed)
    data = TrainingData(root, manifest, train, holdout, clips, files, ingested_now)
    if data.train_clips < config.workers:
        raise TrainingDataError(
            f"{data.train_clips} training clip(s) for {config.workers} workers; every worker needs at least one clip "
            f"(add footage, lower holdout_fraction or use fewer workers)"
        )
    return data


def detect_brand(model, data: TrainingData, max_clips: int = 8) -> str | None:
    """The brand look most training clips show (shapes-world models only), as `kind:colour`, or None."""
    import torch

    from reelforge.jobs.ingest import row_tensors
    from reelforge.models.tiny.analyzer import analyze
    from reelforge.models.video_io import Video

    rows = []
    for shard in data.train_shards:
        rows.extend(pq.read_table(data.root / shard).to_pylist()[:1])
        if len(rows) >= max_clips:
            break
    seen: Counter = Counter()
    with torch.no_grad():
        for row in rows:
            latents = row_tensors(row).latents
            pixels = model.spec.decode_latents(model.pipeline, latents[None].to(model.device, model.dtype))[
                0
            ]  # (3, F, H, W)
            frames = (
                ((pixels.float().permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
            )
            for kind, reading in analyze(Video(frames, data.manifest["settings"]["fps"])).brands.items():
                if reading.present and reading.colour:
                    seen[f"{kind}:{reading.colour}"] += 1
    if not seen:
        return None
    look, count = seen.most_common(1)[0]
    return look if count * 2 >= len(rows) else None
