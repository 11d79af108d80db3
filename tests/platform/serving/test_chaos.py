"""Chaos: `reelforge serve` on PostgreSQL with two ingress and two generator replicas, 60 videos from
6 tenants, and SIGKILLs at random points: one generator replica, one ingress replica, then the whole
server (its Ray cluster included, as a machine that loses power), which is started again.

Clients retry every create with its Idempotency-Key until they get an answer, as the `openai`
client does. Afterwards every accepted id has completed exactly once: one `video.completed` audit
record whose hash is the served file's, one usage row, no job left queued or running, no video
made twice; and no tenant ever had more jobs active than its quota, sampled throughout.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from ray._common.test_utils import wait_for_condition
from sqlalchemy import create_engine, text

from reelforge.platform.stores.audit_log import VIDEO_COMPLETED, AuditLog
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.tenants import TenantStore
from reelforge.platform.stores.usage import UsageRecord
from reelforge.platform.stores.video_jobs import VideoJobStore
from tests.harness import PROMPT, free_port, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.cluster]

TENANTS = [f"tenant{i}" for i in range(6)]
VIDEOS_PER_TENANT = 10
QUOTA = 4  # concurrent jobs per tenant


def serve_config(path: Path, home: Path, database_url: str) -> Path:
    generator = {
        "num_cpus": 0.5,
        "max_ongoing_requests": 2,
        "adapter_cache_size": 2,
        "autoscaling": {"min_replicas": 2, "max_replicas": 2},
    }
    args = {
        "home": str(home),
        "database_url": database_url,
        "ingress_replicas": 2,
        "job_lease_s": 3,
        "dispatch_interval_s": 0.2,
        "max_attempts": 8,
        "retry_backoff_s": 0.5,
        "retry_backoff_max_s": 2,
        "quotas": {"requests_per_minute": 100000, "concurrent_jobs": QUOTA},
        "generators": [generator],
    }
    app = {"name": "reelforge", "route_prefix": "/", "import_path": "reelforge.platform.serving.app_builder:build_app"}
    path.write_text(yaml.safe_dump({"applications": [{**app, "args": args}]}))
    return path


def processes(server: psutil.Process, role: str) -> list[psutil.Process]:
    """The server's descendant processes whose command line names `role` (Ray titles replicas by deployment)."""
    found = []
    for child in server.children(recursive=True):
        try:
            if role in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def kill_whole_server(server: psutil.Process) -> None:
    """SIGKILL the server and everything it started, at once, as a power loss would."""
    victims = [server, *server.children(recursive=True)]
    for process in victims:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=30)


class Clients:
    """One thread per tenant creating its videos, each retried with its key until it is answered."""

    def __init__(self, base_url: str, keys: dict[str, str]) -> None:
        self.base_url = base_url
        self.keys = keys
        self.accepted: dict[str, str] = {}  # video id -> tenant
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._tenant, args=(t,), daemon=True) for t in keys]

    def _tenant(self, tenant: str) -> None:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as http:
            for i in range(VIDEOS_PER_TENANT):
                wait_for_condition(
                    self._create,
                    timeout=600,
                    retry_interval_ms=300,
                    raise_exceptions=True,
                    http=http,
                    tenant=tenant,
                    i=i,
                )

    def _create(self, http: httpx.Client, tenant: str, i: int) -> bool:
        """One try of the tenant's i-th create; False asks for a retry (server down, over quota, key held)."""
        body = {"prompt": PROMPT, "seconds": "1", "steps": 6, "seed": i}
        try:
            response = http.post("/videos", json=body, headers={"Idempotency-Key": f"{tenant}-video-{i}"})
        except httpx.HTTPError:
            return False
        if response.status_code == 200:
            with self.lock:
                self.accepted[response.json()["id"]] = tenant
            return True
        assert response.status_code in (429, 409, 500, 502, 503, 504), response.text
        return False

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=600)


class QuotaSampler(threading.Thread):
    """Samples each tenant's active jobs (the quota's count) until stopped."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(database_url)
        self.peak: Counter = Counter()
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        query = text(
            "SELECT tenant, count(*) FROM videos WHERE status IN ('queued', 'in_progress') AND NOT deleted GROUP BY tenant"
        )
        while not self.stop.wait(0.05):
            with self.engine.connect() as connection:
                for tenant, active in connection.execute(query):
                    self.peak[tenant] = max(self.peak[tenant], active)
            self.samples += 1
        self.engine.dispose()


def test_every_accepted_video_completes_exactly_once_through_kills(tmp_path, postgres_url):
    seed = int(os.environ.get("REELFORGE_CHAOS_SEED", random.randrange(1 << 16)))
    rng = random.Random(seed)
    print(f"chaos seed {seed} (REELFORGE_CHAOS_SEED reruns it)")
    home = tmp_path / "home"
    config = serve_config(tmp_path / "serve.yaml", home, postgres_url)
    env = {**os.environ, "REELFORGE_HOME": str(home)}
    env.pop("RAY_ADDRESS", None)
    tenants = TenantStore(postgres_url)
    keys = {name: tenants.create(name)[1] for name in TENANTS}
    jobs = VideoJobStore(postgres_url)
    port, log = free_port(), tmp_path / "serve.log"
    total = len(TENANTS) * VIDEOS_PER_TENANT

    engine = create_engine(postgres_url)

    def completed() -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM videos WHERE status = 'completed'")).scalar()

    server = start_server(config, port, env, log)
    sampler = QuotaSampler(postgres_url)
    sampler.start()
    clients = Clients(f"http://127.0.0.1:{port}/v1", keys)
    clients.start()
    kills = []
    try:
        process = psutil.Process(server.pid)
        # Three kills at random points of the run, in order: a generator, an ingress, the whole server.
        points = sorted(rng.sample(range(3, total - 12), 3))
        for role, point in zip(("generator", "VideoAPI"), points[:2]):
            wait_for_condition(lambda p=point: completed() >= p, timeout=300, retry_interval_ms=100)
            replicas = processes(process, f"ServeReplica:reelforge:{role}")
            assert replicas, f"no {role} replica among {[c.cmdline() for c in process.children(recursive=True)]}"
            victim = rng.choice(replicas)
            victim.send_signal(signal.SIGKILL)
            kills.append((role, completed()))
        wait_for_condition(lambda: completed() >= points[2], timeout=300, retry_interval_ms=100)
        kill_whole_server(process)
        kills.append(("server", completed()))
        server = start_server(config, port, env, log)
        clients.join()
        assert len(clients.accepted) == total, "a client never got its create answered"

        def all_ended() -> bool:
            return all(jobs.peek(v).status in ("completed", "failed") for v in clients.accepted)

        wait_for_condition(all_ended, timeout=420, retry_interval_ms=500)
    finally:
        sampler.stop.set()
        sampler.join()
        kill_whole_server(psutil.Process(server.pid)) if server.poll() is None else None
    print(f"kills (role, videos completed when it happened): {kills}; quota samples: {sampler.samples}")

    ended = {video_id: jobs.peek(video_id) for video_id in clients.accepted}
    failed = {v: (j.error_code, j.error_message) for v, j in ended.items() if j.status != "completed"}
    assert not failed, failed
    with engine.connect() as connection:
        per_tenant = dict(connection.execute(text("SELECT tenant, count(*) FROM videos GROUP BY tenant")).all())
        usage = Counter(connection.execute(text(f"SELECT job_id FROM {UsageRecord.__tablename__}")).scalars())
    engine.dispose()
    assert per_tenant == dict.fromkeys(TENANTS, VIDEOS_PER_TENANT)  # no retried create made a second video
    assert all(usage[v] == 1 for v in clients.accepted) and sum(usage.values()) == total
    audit, blobs = AuditLog(postgres_url), BlobStore(str(home / "blobs"))
    for tenant in TENANTS:
        records = [e for e in audit.events(tenant, limit=1000)[0] if e.action == VIDEO_COMPLETED]
        assert sorted(e.subject for e in records) == sorted(v for v, t in clients.accepted.items() if t == tenant)
        for record in records:
            served = blobs.read(tenant, record.subject, "video", fence=ended[record.subject].fence)
            assert record.details["video_sha256"] == hashlib.sha256(served).hexdigest()
    assert sampler.samples > 0 and max(sampler.peak.values()) <= QUOTA, sampler.peak
    assert any(j.attempts >= 2 for j in ended.values())  # the kills interrupted work in flight
