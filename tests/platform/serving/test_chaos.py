"""Chaos: 36 videos from 6 tenants through `reelforge serve` on PostgreSQL (two ingress and two
generator replicas) while a generator replica, an ingress replica and then the whole server are
SIGKILLed at random points (the drill is tests/chaos_drill.py). Every accepted id completes exactly
once: one `video.completed` audit record whose hash is the served file's, one usage row, no job left
queued or running, no video made twice by a retried create; no tenant ever over its quota.
"""

from __future__ import annotations

import os
import random

import pytest

from reelforge.platform.stores.video_jobs import VideoJobStore
from tests.chaos_drill import DrillConfig, exactly_once_problems, run_drill

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.cluster, pytest.mark.own_cluster]


def test_every_accepted_video_completes_exactly_once_through_kills(tmp_path, postgres_url):
    seed = int(os.environ.get("REELFORGE_CHAOS_SEED", random.randrange(1 << 16)))
    print(f"chaos seed {seed} (REELFORGE_CHAOS_SEED={seed} reruns it)")
    config = DrillConfig(tenants=6, videos_per_tenant=6, quota=4, kills=True, seed=seed)
    result = run_drill(tmp_path, postgres_url, config)
    print(f"kills (what, videos completed then): {result.kills}; quota samples: {result.quota_samples}")
    assert [what for what, _ in result.kills] == ["generator", "VideoAPI", "server"]
    assert exactly_once_problems(result, postgres_url, config) == []
    attempts = [job.attempts for job in map(VideoJobStore(postgres_url).peek, result.accepted)]
    assert max(attempts) >= 2  # the kills interrupted work in flight
