"""What failures cost: the chaos drill calm and with kills, side by side in this run.

    python -m bench.chaos [--tenants 10] [--videos-per-tenant 20] [--seed 7]

Both runs start a fresh `reelforge serve` (two ingress and two generator replicas) on a fresh
PostgreSQL database and push the same workload through it; the second SIGKILLs a generator
replica, an ingress replica and then the whole server at random points (tests/chaos_drill.py).
Reported: wall time and throughput of each and their ratio, latency from an answered create to
the completed video (p50, p99), the attempts jobs took, and the exactly-once check of each run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from bench.report import save_result
from reelforge.platform.stores.video_jobs import VideoJobStore
from tests.chaos_drill import DrillConfig, DrillResult, exactly_once_problems, run_drill
from tests.harness import fresh_postgres_database


def _summary(result: DrillResult, database_url: str, config: DrillConfig) -> dict:
    jobs = VideoJobStore(database_url)
    ended = [jobs.peek(video_id) for video_id in result.accepted]
    latency = sorted(j.completed_at - result.created_at[j.id] for j in ended if j.completed_at)
    problems = exactly_once_problems(result, database_url, config)
    return {
        "videos": len(result.accepted),
        "wall_s": round(result.wall_s, 1),
        "videos_per_s": round(len(result.accepted) / result.wall_s, 3),
        "latency_p50_s": round(statistics.median(latency), 2),
        "latency_p99_s": round(latency[min(len(latency) - 1, int(0.99 * len(latency)))], 2),
        "attempts": dict(sorted(Counter(j.attempts for j in ended).items())),
        "kills": result.kills,
        "peak_active_per_tenant": max(result.peak_active.values(), default=0),
        "exactly_once_problems": problems,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the drill calm, then with kills; print and save both and the ratio of their throughputs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--videos-per-tenant", type=int, default=20)
    parser.add_argument("--quota", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-output/chaos.json"))
    args = parser.parse_args(argv)
    runs = {}
    for name, kills in (("calm", False), ("chaos", True)):
        config = DrillConfig(args.tenants, args.videos_per_tenant, args.quota, kills=kills, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp, fresh_postgres_database() as database_url:
            runs[name] = _summary(run_drill(Path(tmp), database_url, config), database_url, config)
    result = {
        **runs,
        "ratio_chaos_over_calm_throughput": round(runs["chaos"]["videos_per_s"] / runs["calm"]["videos_per_s"], 3),
    }
    return save_result(result, args.out)


if __name__ == "__main__":
    main()
