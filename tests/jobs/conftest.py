"""A real local Ray cluster (loopback, 4 logical CPUs) shared by the jobs tests."""

from __future__ import annotations

import pytest

from reelforge.jobs.ray_cluster import ensure_ray
from reelforge.settings import Settings


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    import ray

    ensure_ray(Settings(home=tmp_path_factory.mktemp("ray-home")))
    yield ray
    ray.shutdown()
