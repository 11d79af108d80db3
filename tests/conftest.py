"""Shared fixtures: tiny random Wan models built from configs, isolated reelforge homes, sample videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.models.loading import VideoModel, load_model
from reelforge.models.tiny.random_pipeline import (
    TinyWanConfig,
    build_random_wan_pipeline,
    save_model_dir,
)
from reelforge.models.video_io import write_mp4
from reelforge.settings import Settings
from tests.harness import gradient_video, start_test_ray


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


@pytest.fixture
def sample_mp4(tmp_path: Path) -> Path:
    """A real H.264 MP4 of 16 frames, 64x48 at 16 fps."""
    return write_mp4(gradient_video(), tmp_path / "clip.mp4")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real local Ray cluster shared by the jobs and platform tests."""
    import ray

    start_test_ray(tmp_path_factory.mktemp("ray-home"))
    yield ray
    ray.shutdown()


CLUSTER_FIXTURES = {"ray_cluster", "serve_port", "api_platform"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a Ray cluster, so `make test-fast` (`-m "not cluster"`) leaves it out;
    and run the tests that start their own cluster first, while the suite's shared one is not up yet:
    otherwise each stops and restarts it, or runs beside its idle Serve apps on two cores."""
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
    items.sort(key=lambda item: item.get_closest_marker("own_cluster") is None)  # stable: order kept otherwise
