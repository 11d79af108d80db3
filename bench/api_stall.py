"""Does one tenant's heavy request stall another's? p99 of a cheap read, idle vs under load, side by side.

    python -m bench.api_stall [--seconds 8] [--upload-mb 256]

The API app (real stores, production limits) runs under uvicorn on loopback, one event loop as in
an ingress replica. Tenant globex polls `GET /v1/videos/{id}` the whole time; meanwhile tenant acme
sends, phase by phase: nothing (the baseline), 1 MB prompts (each must be refused with a 400), and
large uploads streamed to storage, one after another. Reported per phase: globex's p50/p99 and the ratio of its p99
to the baseline's, and how long acme's refusals and upload took.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from bench.report import save_result
from tests.harness import PROMPT, ApiClients, free_port


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Poller(threading.Thread):
    """Reads one video over and over, recording each latency, until stopped."""

    def __init__(self, base_url: str, key: str, video_id: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"Authorization": key}, timeout=30)
        self.video_id = video_id
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            response = self.client.get(f"/v1/videos/{self.video_id}")
            self.latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"the probe read failed: {response.status_code} {response.text[:200]}")


def _phase(base_url: str, probe: tuple[str, str], seconds: float, load) -> dict:
    poller = Poller(base_url, *probe)
    poller.start()
    loaded = load(seconds) if load else time.sleep(seconds)
    poller.stop.set()
    poller.join()
    latencies = poller.latencies
    return {
        "probe_reads": len(latencies),
        "probe_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "probe_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        **(loaded or {}),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the three phases and print and save their latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--upload-mb", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("bench-output/api_stall.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clients = ApiClients(tmp / "home", max_request_bytes=1 << 20, quotas={"requests_per_minute": 100_000})
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(clients.app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        base_url = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.05)
        globex = clients.globex.headers["Authorization"]
        acme = clients.acme.headers["Authorization"]
        video_id = clients.globex.post("/v1/videos", json={"prompt": PROMPT}).json()["id"]
        probe = (globex, video_id)

        def huge_prompts(seconds: float) -> dict:
            body = json.dumps({"prompt": "x" * ((1 << 20) - 64)}).encode()
            refusals = []
            with httpx.Client(base_url=base_url, headers={"Authorization": acme}, timeout=60) as http:
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = http.post("/v1/videos", content=body, headers={"Content-Type": "application/json"})
                    refusals.append(time.perf_counter() - started)
                    if response.status_code != 400:
                        raise RuntimeError(f"a 1 MB prompt got {response.status_code}, not 400")
            return {"refusals": len(refusals), "refusal_p99_ms": round(_percentile(refusals, 0.99) * 1000, 2)}

        upload = tmp / "footage.zip"
        with upload.open("wb") as handle:
            for _ in range(args.upload_mb):
                handle.write(os.urandom(1 << 20))

        def large_uploads(seconds: float) -> dict:
            took = []
            with httpx.Client(base_url=base_url, headers={"Authorization": acme}, timeout=600) as http:
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    with upload.open("rb") as handle:
                        response = http.post(
                            "/v1/files", files={"file": ("footage.zip", handle)}, data={"purpose": "fine-tune"}
                        )
                    took.append(time.perf_counter() - started)
                    if response.status_code >= 500:
                        raise RuntimeError(f"the upload got {response.status_code}")
            return {
                "uploads": len(took),
                "upload_mb": args.upload_mb,
                "upload_s_median": round(statistics.median(took), 2),
            }

        phases = {
            "idle": _phase(base_url, probe, args.seconds, None),
            "huge_prompts": _phase(base_url, probe, args.seconds, huge_prompts),
            "large_uploads": _phase(base_url, probe, args.seconds, large_uploads),
        }
        server.should_exit = True
    baseline = phases["idle"]["probe_p99_ms"]
    for name in ("huge_prompts", "large_uploads"):
        phases[name]["p99_ratio_to_idle"] = round(phases[name]["probe_p99_ms"] / baseline, 2)
    return save_result(phases, args.out)


if __name__ == "__main__":
    main()
