"""Shared fixtures: tiny random Wan models built from configs, isolated reelforge homes, sample videos."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from reelforge.jobs.ray_cluster import ensure_ray
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.tiny.random_pipeline import TinyWanConfig, build_random_wan_pipeline, save_model_dir
from reelforge.models.video_io import Video, write_mp4
from reelforge.settings import Settings


@pytest.fixture(scope="session")
def tiny_config() -> TinyWanConfig:
    """The smallest Wan sizes that exercise every code path."""
    return TinyWanConfig.for_tests()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_config: TinyWanConfig) -> Path:
    """A diffusers-format directory of a seeded tiny Wan pipeline, built once per session."""
    path = tmp_path_factory.mktemp("models") / "tiny-wan"
    return save_model_dir(build_random_wan_pipeline(tiny_config, seed=0), path, tiny_config.defaults)


@pytest.fixture
def tiny_model(tiny_model_dir: Path) -> VideoModel:
    """A freshly loaded tiny model per test, so adapters never leak between tests."""
    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings rooted in an empty temporary home, with no model paths from the real environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("REELFORGE_HOME", str(home))
    for key in [k for k in list(__import__("os").environ) if k.startswith("REELFORGE_MODEL_PATH_")]:
        monkeypatch.delenv(key)
    return Settings.from_env()


def gradient_video(num_frames: int = 16, height: int = 48, width: int = 64, fps: float = 16.0) -> Video:
    """Smooth moving gradients (compress well) whose frame index is readable from the mean brightness."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(num_frames):
        level = 40 + 10 * i  # distinct per frame: lets tests tell which source frame was kept
        r = (level + 0 * x) % 256
        g = x * 200 // max(width - 1, 1) + 3 * i  # at most 245: no wrap-around edge
        b = y * 255 // max(height - 1, 1)
        frames.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    return Video(np.stack(frames), fps)


@pytest.fixture
def sample_mp4(tmp_path: Path) -> Path:
    """A real H.264 MP4 of 16 frames, 64x48 at 16 fps."""
    return write_mp4(gradient_video(), tmp_path / "clip.mp4")


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run `reelforge ARGS` in-process through `main()` (the real exit-code mapping)."""
    from reelforge.cli import main

    monkeypatch.setattr(sys, "argv", ["reelforge", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def start_test_ray(home: Path) -> None:
    """The suite's local Ray cluster (loopback, 4 logical CPUs) with a dashboard on a free port.

    The dashboard's Jobs API runs the API's fine-tuning jobs; a free port keeps it clear of a
    `reelforge serve` that a test starts on the default one.
    """
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ensure_ray(Settings(home=home), dashboard=True, dashboard_port=port)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real local Ray cluster shared by the jobs and platform tests."""
    import ray

    start_test_ray(tmp_path_factory.mktemp("ray-home"))
    yield ray
    ray.shutdown()
