"""Serving benchmarks, each a ratio against a baseline run side by side in this process:

    python -m bench.serving [--repeats 5] [--jobs 30] [--tenants 20] [--cache 4]

1. API end-to-end latency (create, poll, download through the official `openai` client against a
   real Serve app) vs a bare in-process `generate` + MP4 encode of the same request. Goal <= 1.10.
2. Throughput of N tenants round-robin, each with its own adapter, vs 1 tenant with one adapter,
   on the same single replica. Goal >= 0.9.
3. Adapter cold load (registry fetch + peft load, and peft load from the disk cache) and warm
   switch (activating another loaded adapter).
Runs are interleaved (A, B, A, B ...) so machine noise hits both sides alike; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import openai
import torch

from bench.report import save_result
from reelforge.jobs.adapter_registry import import_adapter, promote
from reelforge.jobs.ray_cluster import ensure_ray
from reelforge.models.loading import load_model
from reelforge.models.lora import activate_adapter
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.video_io import mp4_bytes
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.serving.adapter_loader import load_registered_adapter
from reelforge.platform.serving.app_builder import build_app
from reelforge.platform.stores.tenants import TenantStore
from reelforge.platform.stores.video_jobs import VideoJobStore
from reelforge.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "adapters"
PROMPT = "a red circle moving left on a white background"
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def _import_tenant_adapters(settings: Settings, tenants: list[str]) -> dict[str, str]:
    fixtures = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
    models = {}
    for i, tenant in enumerate(tenants):
        version = import_adapter(settings, tenant, "brand", "reelforge-tiny", fixtures[i % len(fixtures)])
        promote(settings, version.name, version.version)
        models[tenant] = version.fine_tuned_model
    return models


def adapter_load_times(settings: Settings, model, tenants: list[str]) -> dict:
    """Cold load from the registry, cold load from the disk cache, and warm switch, in this process."""
    import threading

    lock = threading.Lock()
    keys = [f"{t}.brand.reelforge-tiny/1" for t in tenants[:5]]
    first = [load_registered_adapter(model, settings, k, lock) for k in keys]
    fetch_and_load = [a.load_seconds for a in first]
    for adapter in first:
        adapter.__del__()
    cached = [load_registered_adapter(model, settings, k, lock) for k in keys]
    switches = []
    for i in range(50):
        started = time.perf_counter()
        activate_adapter(model, cached[i % len(cached)].peft_name)
        switches.append(time.perf_counter() - started)
    return {
        "cold_load_from_registry_s": _median(fetch_and_load),
        "cold_load_from_disk_cache_s": _median([a.load_seconds for a in cached]),
        "warm_switch_s": round(statistics.median(switches), 6),
    }


def api_latency(base_url: str, key: str, model, request: dict, repeats: int, jobs: VideoJobStore) -> dict:
    """Bare generate+encode vs the API round trip for the same request, interleaved.

    The client polls at the server's `openai-poll-after-ms` hint, as `create_and_poll` does by default.
    """
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    width, height = (int(x) for x in request["size"].split("x"))
    settings = GenerationSettings(
        prompt=PROMPT,
        width=width,
        height=height,
        num_frames=int(request["seconds"]) * 8 + 1,
        steps=request["steps"],
        seed=0,
    )
    bare, bare_generate, api, replica_generate, noticed = [], [], [], [], []
    for _ in range(repeats + 1):  # the first pair warms both paths up and is dropped
        started = time.perf_counter()
        video = generate(model, settings)
        generated = time.perf_counter()
        mp4_bytes(video)
        bare_generate.append(generated - started)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        done = client.videos.create_and_poll(
            prompt=PROMPT,
            model="reelforge-tiny",
            seconds=request["seconds"],
            size=request["size"],
            extra_body={"steps": request["steps"]},
        )
        seen = time.time()
        client.videos.download_content(done.id).read()
        api.append(time.perf_counter() - started)
        job = jobs.peek(done.id)
        replica_generate.append(job.timings["generate_s"])
        noticed.append(seen - job.completed_at)
    bare, bare_generate, api = bare[1:], bare_generate[1:], api[1:]
    return {
        "request": request,
        "repeats": repeats,
        "bare_generate_s": _median(bare_generate),
        "bare_generate_encode_s": _median(bare),
        "api_s": _median(api),
        "ratio_vs_generate_encode": round(_median(api) / _median(bare), 3),
        "ratio_vs_generate": round(_median(api) / _median(bare_generate), 3),
        # Where the difference goes: the same generation inside the replica, and completion -> client notices.
        "replica_generate_s": _median(replica_generate[1:]),
        "completion_noticed_after_s": _median(noticed[1:]),
    }


def throughput(
    base_url: str, jobs: VideoJobStore, keys: dict[str, str], models: dict[str, str], tenants: list[str], n_jobs: int
) -> dict:
    """Videos per second for `n_jobs` submitted at once, round-robin over `tenants`."""
    clients = {
        t: httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {keys[t]}"}, timeout=60) for t in tenants
    }
    started = time.perf_counter()
    ids = []
    for i in range(n_jobs):
        tenant = tenants[i % len(tenants)]
        response = clients[tenant].post(
            "/videos", json={"prompt": PROMPT, "model": models[tenant], "seed": i, "seconds": "2"}
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    while not all(jobs.peek(v).status in ("completed", "failed") for v in ids):
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    finished = [jobs.peek(v) for v in ids]
    for client in clients.values():
        client.close()
    waits = [j.timings["adapter_wait_s"] for j in finished if j.timings and j.timings.get("adapter_wait_s") is not None]
    return {
        "videos_per_s": round(n_jobs / elapsed, 4),
        "failed": sum(j.status == "failed" for j in finished),
        "median_adapter_wait_s": _median(waits) if waits else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--cache", type=int, default=4, help="adapter_cache_size of the replica")
    parser.add_argument("--out", type=Path, default=Path("bench-output/serving.json"))
    args = parser.parse_args(argv)
    from ray import serve

    home = Path(tempfile.mkdtemp(prefix="reelforge-bench-serving-"))
    settings = Settings(home=home)
    tenants = [f"tenant-{i:02d}" for i in range(args.tenants)]
    models = _import_tenant_adapters(settings, tenants)
    model = load_model("reelforge-tiny", settings, device="cpu")
    loads = adapter_load_times(settings, model, tenants)

    ensure_ray(settings)
    port = 18000 + os.getpid() % 1000
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    cpus = os.cpu_count() or 1
    base_url = f"http://127.0.0.1:{port}/bench/v1"

    def deploy(cache: int) -> ServeAppConfig:
        config = ServeAppConfig.model_validate(
            {
                "home": str(home),
                "quotas": {"requests_per_minute": 100_000, "concurrent_jobs": 10_000},
                "poll_after_ms": 250,
                # As many CPUs as this process's torch uses, so the replica gets as many threads as the bare call.
                "generators": [
                    {
                        "num_cpus": cpus,
                        "max_ongoing_requests": 2,
                        "adapter_cache_size": cache,
                        "autoscaling": {"min_replicas": 1, "max_replicas": 1},
                    }
                ],
            }
        ).pinned()
        serve.run(build_app(config), name="bench", route_prefix="/bench")
        return config

    config = deploy(max(2, args.cache))
    store = TenantStore(config.database_url)
    keys = {t: store.create(t)[1] for t in tenants}
    jobs = VideoJobStore(config.database_url)
    latency = api_latency(
        base_url, keys[tenants[0]], model, {"seconds": "8", "size": "64x64", "steps": 30}, args.repeats, jobs
    )
    del model

    throughputs = {}
    # A cache smaller than the tenant count (every round-robin job is a miss: evict + load), then one that holds them all.
    for cache in (max(2, args.cache), len(tenants)):
        if cache != max(2, args.cache):
            deploy(cache)
        # Not measured: every adapter once, so both sides start from the steady state (adapters on disk,
        # the cache as full as it will be) rather than one side paying the first fetches.
        throughput(base_url, jobs, keys, models, tenants, len(tenants))
        one, many = [], []
        for _ in range(3):
            one.append(throughput(base_url, jobs, keys, models, tenants[:1], args.jobs))
            many.append(throughput(base_url, jobs, keys, models, tenants, args.jobs))
        one_rate, many_rate = _median([r["videos_per_s"] for r in one]), _median([r["videos_per_s"] for r in many])
        throughputs[f"adapter_cache_{cache}"] = {
            "one_tenant": one,
            "many_tenants": many,
            "one_tenant_videos_per_s": one_rate,
            "many_tenants_videos_per_s": many_rate,
            "ratio": round(many_rate / one_rate, 3),
        }
    serve.delete("bench")
    return save_result(
        {
            "bench": "serving",
            "cpus": cpus,
            "torch_threads": torch.get_num_threads(),
            "latency": latency,
            "throughput": {"jobs": args.jobs, "tenants": args.tenants, **throughputs},
            "adapter_load": loads,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
