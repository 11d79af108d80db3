"""Ingestion on a real local Ray cluster: report, latent shards, per-video cache, decode quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reelforge.errors import UserInputError
from reelforge.jobs.ingest import (
    MANIFEST_FILE,
    IngestConfig,
    ingest,
    read_latents,
    row_tensors,
)
from reelforge.models.loading import load_model
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.models.video_io import read_video
from tests.harness import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    write_footage(root, count=3, seed=5, brand=BrandLook("border", "teal"))
    (root / "broken.mp4").write_text("not a video")
    return root


def test_ingest_reports_caches_and_reencodes_only_what_changed(ray_cluster, footage: Path, tmp_path: Path):
    config = IngestConfig("acme", "reelforge-tiny", footage, tmp_path / "out")
    first = ingest(config)
    assert first["accepted"] == ["clip_0000.mp4", "clip_0001.mp4", "clip_0002.mp4"]
    assert [(r["file"], r["reason"]) for r in first["rejected"]] == [("broken.mp4", "not a video")]
    assert (first["clips"], first["shards"], first["encoded_videos"], first["cache_hit"]) == (3, 3, 3, False)
    manifest = json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())
    assert len(manifest["shard_files"]) == 3

    again = ingest(config)
    assert again["cache_hit"] and again["encoded_videos"] == 0 and again["dataset_hash"] == first["dataset_hash"]

    (footage / "clip_0001.txt").write_text("a blue square moving up on a black background\n")
    changed = ingest(config)
    assert (
        changed["encoded_videos"] == 1 and changed["shards"] == 3 and changed["dataset_hash"] != first["dataset_hash"]
    )
    assert len(list((tmp_path / "out" / "shards").glob("*.parquet"))) == 3  # the superseded shard is gone
    captions = {row["file"]: row["caption"] for row in read_latents(tmp_path / "out").take_all()}
    assert captions["clip_0001.mp4"] == "a blue square moving up on a black background"


def test_latents_decode_back_close_to_the_source(ray_cluster, tmp_path: Path):
    # Unbranded footage: the VAE reconstructs plain clips at ~30 dB; thin brand borders cost ~3 dB more.
    footage = tmp_path / "plain"
    write_footage(footage, count=1, seed=8)
    ingest(IngestConfig("acme", "reelforge-tiny", footage, tmp_path / "out"))
    row = next(r for r in read_latents(tmp_path / "out").take_all() if r["file"] == "clip_0000.mp4")
    latents, text, condition = row_tensors(row)
    model = load_model("reelforge-tiny", device="cpu")
    assert latents.shape == model.spec.latent_shape(model.pipeline, 17, 32, 32)
    assert text.shape == (model.defaults.max_text_tokens, 64)
    assert condition is None  # TI2V-style: the image condition is the latent's own first frame
    with torch.no_grad():
        pixels = model.spec.decode_latents(model.pipeline, latents[None])[0]  # (3, F, H, W)
    decoded = ((pixels.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).numpy()
    source = read_video(footage / "clip_0000.mp4", fps=8.0).frames[:17].astype(np.float64)
    psnr = 10 * np.log10(255.0**2 / np.mean((decoded - source) ** 2))
    assert psnr >= 26.0, psnr


def test_strict_fails_before_encoding(ray_cluster, footage: Path, tmp_path: Path):
    with pytest.raises(UserInputError, match="--strict: 1 file.*broken.mp4: not a video"):
        ingest(IngestConfig("acme", "reelforge-tiny", footage, tmp_path / "out", strict=True))
    assert not (tmp_path / "out" / "shards").exists()


@pytest.mark.parametrize("tenant", ["", "A", "acme corp", "../globex"])
def test_bad_tenant_is_refused(tenant: str, tmp_path: Path):
    with pytest.raises(UserInputError, match="tenant"):
        IngestConfig(tenant, "reelforge-tiny", tmp_path, tmp_path / "out")


def test_ingest_cli(ray_cluster, footage: Path, tmp_path: Path, monkeypatch, capsys):
    code, out, err = run_cli(
        ["ingest", str(footage), "--tenant", "acme", "--out", str(tmp_path / "o"), "--json"], monkeypatch, capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["clips"] == 3 and report["rejected"][0]["file"] == "broken.mp4"
    code, _, err = run_cli(
        ["ingest", str(tmp_path / "missing"), "--tenant", "acme", "--out", str(tmp_path / "o2")], monkeypatch, capsys
    )
    assert code == 2 and "does not exist" in err
    decoded = tmp_path / "decoded.mp4"
    code, _, err = run_cli(
        ["decode-latents", str(tmp_path / "o"), "--file", "clip_0001.mp4", "-o", str(decoded)], monkeypatch, capsys
    )
    assert code == 0, err
    assert read_video(decoded).frames.shape == (17, 32, 32, 3)
    code, _, err = run_cli(["decode-latents", str(tmp_path / "o"), "--file", "broken.mp4"], monkeypatch, capsys)
    assert code == 2 and "no clip 0 of 'broken.mp4'" in err


def test_footage_of_several_aspect_ratios_lands_in_their_buckets(ray_cluster, tiny_model_dir: Path, tmp_path: Path):
    """Wide and tall videos in one batch are bucketed by aspect ratio and encoded at their own shapes."""
    from reelforge.models.video_io import write_mp4
    from tests.harness import gradient_video

    card_path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, card_path)
    card = json.loads((card_path / "reelforge.json").read_text())
    card["defaults"]["buckets"] = [[48, 32], [32, 48]]
    (card_path / "reelforge.json").write_text(json.dumps(card))
    footage = tmp_path / "mixed"
    for name, (h, w) in {"wide": (36, 64), "tall": (64, 36)}.items():
        # Smooth gradients, not noise: the face check (ingest refuses faces without consent) finds
        # faces in random pixels by chance, and which ones depends on the encoder's rounding.
        write_mp4(gradient_video(num_frames=9, height=h, width=w, fps=8.0), footage / f"{name}.mp4")
        (footage / f"{name}.txt").write_text(f"a {name} clip")
    report = ingest(IngestConfig("acme", str(card_path), footage, tmp_path / "out", encode_batch=4))
    assert report["clips"] == 2 and report["rejected"] == []
    shapes = {row["file"]: tuple(row["latent_shape"]) for row in read_latents(tmp_path / "out").take_all()}
    assert shapes == {"wide.mp4": (4, 3, 8, 12), "tall.mp4": (4, 3, 12, 8)}
