"""What a fine-tune measures at its eval steps, run inside the training workers.

* eval loss: the objective on held-out clips at fixed timestep quantiles with fixed noise, so two
  runs (or two steps) on the same data are compared on exactly the same samples;
* validation videos: fixed prompts and seeds, MP4 plus a GIF preview the MLflow UI shows inline;
  image-to-video fine-tunes start each from a held-out clip's first frame;
* on shapes-world models, the `reelforge eval` metrics (adherence, brand rate of the tenant's look).

Every worker takes part: under ZeRO-3 each forward pass gathers parameters from all ranks, so all
ranks run the same number of forward calls (slices are padded); results are summed with
all-reduce and rank 0 logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reelforge.jobs.finetune_config import FineTuneConfig
from reelforge.jobs.ingest import LatentClip
from reelforge.jobs.training_data import TrainingData
from reelforge.models.objectives import DDPMObjective

EVAL_NOISE_SEED = 20240611  # fixed: eval noise must not depend on the run's seed


def balanced_slice(count: int, rank: int, world: int) -> list[int | None]:
    """Indices of `range(count)` for `rank`, padded with None so every rank gets the same length."""
    per_rank = -(-count // world)
    mine: list[int | None] = list(range(rank, count, world))
    return mine + [None] * (per_rank - len(mine))


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum a list of floats over all workers (identity without a process group)."""
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor.tolist()


@torch.no_grad()
def eval_loss(
    model,
    transformer,
    holdout: list[LatentClip],
    timesteps: tuple[float, ...],
    rank: int,
    world: int,
) -> dict[str, float]:
    """Mean held-out loss overall and per timestep quantile (`eval/loss`, `eval/loss_t0.5`, ...)."""
    objective = model.spec.objective(model.pipeline)
    t = torch.tensor(timesteps, dtype=torch.float32)  # (T,) quantiles in (0, 1)
    if isinstance(objective, DDPMObjective):
        t = (t * objective.num_train_timesteps).long()  # discrete-time models index their schedule
    sums = [0.0] * (len(timesteps) + 1)
    for index in balanced_slice(len(holdout), rank, world):
        x0, text, condition = holdout[index if index is not None else 0]
        generator = torch.Generator().manual_seed(EVAL_NOISE_SEED + (index or 0))
        x0 = x0[None].expand(len(timesteps), *x0.shape)  # (T, C, F, H, W): one clip at every quantile
        eps = torch.randn(x0.shape, generator=generator)
        batch = objective.batch(x0, eps, t)
        device = model.device
        prediction = (
            model.spec.predict(
                transformer,
                batch.noisy.to(device),
                batch.model_timesteps.to(device),
                text[None].expand(len(timesteps), *text.shape).to(device),
                # Image-to-video families that cache a condition are scored from the clip's own first frame.
                None if condition is None else condition[None].expand(len(timesteps), *condition.shape).to(device),
            )
            .float()
            .cpu()
        )
        if index is None:
            continue  # padding: the forward pass kept ZeRO-3 in step, the result is not counted
        per_t = ((prediction - batch.target) ** 2).flatten(1).mean(1)  # (T,)
        for i, value in enumerate(per_t.tolist()):
            sums[i] += value
        sums[-1] += 1
    totals = all_reduce_sum(sums)
    clips = max(totals[-1], 1.0)
    metrics = {f"eval/loss_t{q:g}": totals[i] / clips for i, q in enumerate(timesteps)}
    metrics["eval/loss"] = sum(totals[:-1]) / (clips * len(timesteps))
    return metrics


def world_eval(model, prompts: int, seeds: int, brand: str | None, rank: int, world: int) -> dict:
    """The `reelforge eval` metrics over this worker's slice of the held-out prompts, summed over workers."""
    from reelforge.models.sampling import GenerationSettings, generate
    from reelforge.models.tiny.brand_looks import parse_brand
    from reelforge.models.tiny.evaluation import (
        SCORE_KEYS,
        EvalConfig,
        eval_jobs,
        score_videos,
        summarize,
    )

    config = EvalConfig(prompts=prompts, seeds=tuple(range(seeds)))
    look = parse_brand(brand) if brand else None
    jobs = eval_jobs(config)
    mine = balanced_slice(len(jobs), rank, world)
    counts = score_videos(model, [jobs[i] for i in mine if i is not None], config, look)
    for _ in range(sum(i is None for i in mine)):  # keep ZeRO-3 ranks in step
        generate(model, GenerationSettings("a red circle moving left on a white background", seed=0))
    keys = [*SCORE_KEYS, "n", "seconds"]
    summed = dict(zip(keys, all_reduce_sum([counts[k] for k in keys])))
    return summarize(summed, model.name, config, look)


@dataclass(frozen=True)
class ValidationExample:
    """One validation video: its prompt and, for image-to-video fine-tunes, a held-out clip's first
    latent frame (C, 1, H', W') float32, the picture the video starts from (None: text only)."""

    prompt: str
    first_latent: np.ndarray | None = None


def starts_from_images(config: FineTuneConfig, spec) -> bool:
    """Whether the adapter is trained (and so validated) to start from a first frame."""
    return config.image_conditioning_rate(spec.image_input) > 0


def validation_examples(config: FineTuneConfig, data: TrainingData, from_images: bool) -> list[ValidationExample]:
    """The configured prompts, else up to `validation_videos` distinct captions, held-out videos first.

    With `from_images` (an image-to-video fine-tune), each starts from the first latent frame of a
    clip, held-out ones first, as the adapter will be used: from a picture it has not seen.
    """
    import pyarrow.parquet as pq

    columns = ["caption", "latents", "latent_shape"] if from_images else ["caption"]
    captions: list[str] = []
    first_latents: list[np.ndarray] = []
    wanted = config.validation_videos if config.validation_prompts is None else len(config.validation_prompts)
    if wanted == 0:
        return []
    for shard in data.holdout_shards + data.train_shards:
        rows = pq.read_table(data.root / shard, columns=columns).slice(0, 1).to_pylist()
        if not rows:
            continue
        row = rows[0]
        if row["caption"] in captions and config.validation_prompts is None:
            continue
        captions.append(row["caption"])
        if from_images:
            latents = np.frombuffer(row["latents"], dtype=np.float32).reshape(row["latent_shape"])  # (C, F', H', W')
            first_latents.append(latents[:, :1].copy())  # (C, 1, H', W')
        if len(captions) >= wanted:
            break
    prompts = list(config.validation_prompts) if config.validation_prompts is not None else captions[:wanted]
    return [
        ValidationExample(prompt, first_latents[i % len(first_latents)] if first_latents else None)
        for i, prompt in enumerate(prompts)
    ]


def first_frame_of(model, first_latent: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: a first latent frame decoded by the model's VAE (causal: latent 0 is frame 0)."""
    import torch

    latent = torch.from_numpy(first_latent)[None].to(model.device)  # (1, C, 1, H', W')
    pixels = model.spec.decode_latents(model.pipeline, latent)[0, :, 0]  # (3, H, W) in [-1, 1]
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def validation_videos(model, examples: list[ValidationExample], out_dir: Path, write: bool) -> list[Path]:
    """Generate each example (seed 0) on every rank; rank 0 (`write`) saves MP4 + GIF pairs, and the
    first frame an image-to-video example started from."""
    from PIL import Image

    from reelforge.models.sampling import GenerationSettings, generate
    from reelforge.models.video_io import write_mp4, write_preview

    paths = []
    for i, example in enumerate(examples):
        image = None if example.first_latent is None else first_frame_of(model, example.first_latent)
        size = {} if image is None else {"height": image.shape[0], "width": image.shape[1]}  # the clip's bucket
        video = generate(model, GenerationSettings(example.prompt, seed=0, image=image, **size))
        if write:
            stem = f"{i:02d}-" + "-".join(example.prompt.split()[:6])
            paths.append(write_mp4(video, out_dir / f"{stem}.mp4"))
            write_preview(video, out_dir / f"{stem}.gif")
            (out_dir / f"{stem}.txt").write_text(example.prompt + "\n")
            if image is not None:
                Image.fromarray(image).save(out_dir / f"{stem}.first-frame.png")
    return paths
