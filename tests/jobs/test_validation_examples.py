"""Validation videos of image-to-video fine-tunes start from held-out clips' first frames: picked
from the ingested shards by the driver, decoded and generated from by the workers (reelforge-tiny,
an image-to-video model, no Ray)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.train_evaluation import (
    ValidationExample,
    first_frame_of,
    starts_from_images,
    validation_examples,
    validation_videos,
)
from reelforge.jobs.training_data import TrainingData
from reelforge.models.loading import load_model
from reelforge.models.tiny.shapes_world import render_clip, sample_clip_spec
from reelforge.models.video_io import read_video


def _shard(path, caption: str, latents: np.ndarray) -> str:
    row = {"caption": caption, "latents": latents.tobytes(), "latent_shape": list(latents.shape)}
    pq.write_table(pa.Table.from_pylist([row]), path)
    return path.name


@pytest.fixture
def data(tmp_path) -> TrainingData:
    """Three single-clip shards; clip k's latents are filled with k, so a first frame names its clip."""
    shards = [_shard(tmp_path / f"{k}.parquet", f"caption {k}", np.full((4, 3, 2, 2), k, np.float32)) for k in range(3)]
    return TrainingData(tmp_path, {}, shards[:2], shards[2:], {s: 1 for s in shards}, {}, ingested_now=False)


def test_image_to_video_examples_take_held_out_first_frames_first(data):
    config = build_config({"tenant": "acme", "data": "."}, ["validation_videos=2", "image_conditioning=0.5"])
    examples = validation_examples(config, data, from_images=True)
    assert [e.prompt for e in examples] == ["caption 2", "caption 0"]  # the held-out clip first
    assert [e.first_latent.shape for e in examples] == [(4, 1, 2, 2)] * 2
    assert [float(e.first_latent.max()) for e in examples] == [2.0, 0.0]
    assert all(e.first_latent is None for e in validation_examples(config, data, from_images=False))
    none = build_config({"tenant": "acme", "data": "."}, ["validation_videos=0"])
    assert validation_examples(none, data, from_images=True) == []
    fixed = build_config({"tenant": "acme", "data": "."}, ['validation_prompts=["one", "two", "three"]'])
    assert [e.prompt for e in validation_examples(fixed, data, from_images=True)] == ["one", "two", "three"]


def test_only_image_trained_adapters_are_validated_from_images():
    model = load_model("reelforge-tiny", device="cpu")  # Wan 2.2 TI2V-style: the image is optional
    text_only = build_config({"tenant": "acme", "data": "."}, [])
    assert not starts_from_images(text_only, model.spec)  # default: a look must show without an image
    assert starts_from_images(build_config({"tenant": "acme", "data": "."}, ["image_conditioning=0.5"]), model.spec)


def test_the_validation_video_starts_from_the_decoded_first_frame(tmp_path):
    model = load_model("reelforge-tiny", device="cpu")
    clip, _ = render_clip(sample_clip_spec(np.random.default_rng(4)))
    pixels = torch.from_numpy(clip.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
    with torch.no_grad():
        latents = model.spec.encode_video(model.pipeline, pixels)[0].numpy()  # (C, F', H', W')
    example = ValidationExample("moving left on a white background", latents[:, :1].copy())
    (path,) = validation_videos(model, [example], tmp_path, write=True)
    first = first_frame_of(model, example.first_latent)
    assert first.shape == clip.frames.shape[1:]
    written = read_video(path).frames[0]
    other = render_clip(sample_clip_spec(np.random.default_rng(5)))[0].frames[0]  # another clip's first frame
    # H.264's 4:2:0 chroma costs a 32 px frame some dB; another picture costs far more.
    assert _psnr(written, first) > 22 and _psnr(written, first) > _psnr(written, other) + 8
    assert (tmp_path / f"{path.stem}.first-frame.png").is_file()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-9)))
