"""The chaos drill: `reelforge serve` on PostgreSQL with two ingress and two generator replicas,
tenants creating videos concurrently, and (when asked) SIGKILLs at random points: one generator
replica, one ingress replica, then the whole server (its Ray cluster included, as a machine that
loses power), which is started again.

Clients retry every create with its Idempotency-Key until they get an answer, as the `openai`
client does. `exactly_once_problems` then lists every way the outcome breaks exactly-once. The
chaos test (tests/platform/serving/test_chaos.py) asserts there are none; `bench/chaos.py` runs the
drill calm and with kills side by side and reports what the kills cost.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml
from ray._common.test_utils import wait_for_condition
from sqlalchemy import create_engine, text

from reelforge.platform.stores.audit_log import VIDEO_COMPLETED, AuditLog
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.tenants import TenantStore
from reelforge.platform.stores.usage import UsageRecord
from reelforge.platform.stores.video_jobs import VideoJobStore
from tests.harness import PROMPT, free_port, start_server


@dataclass(frozen=True)
class DrillConfig:
    """The drill's workload and whether it kills."""

    tenants: int = 6
    videos_per_tenant: int = 10
    quota: int = 4  # concurrent jobs per tenant
    kills: bool = True
    seed: int = 0
    steps: int = 6  # denoising steps per video: short jobs make many in-flight moments to kill

    @property
    def total(self) -> int:
        return self.tenants * self.videos_per_tenant


@dataclass
class DrillResult:
    """What happened: the accepted ids, when each kill struck, and the quota samples."""

    accepted: dict[str, str]  # video id -> tenant
    created_at: dict[str, float]  # video id -> when the client's create was answered
    kills: list[tuple[str, int]]  # (what was killed, videos completed when it was)
    wall_s: float
    peak_active: dict[str, int]
    quota_samples: int
    home: Path


def serve_config(path: Path, home: Path, database_url: str, quota: int) -> Path:
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
        "quotas": {"requests_per_minute": 100000, "concurrent_jobs": quota},
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

    def __init__(self, base_url: str, keys: dict[str, str], config: DrillConfig) -> None:
        self.base_url = base_url
        self.keys = keys
        self.config = config
        self.accepted: dict[str, str] = {}  # video id -> tenant
        self.created_at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._tenant, args=(t,), daemon=True) for t in keys]

    def _tenant(self, tenant: str) -> None:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as http:
            for i in range(self.config.videos_per_tenant):
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
        """One try of the tenant's i-th create; False asks for a retry (server down or starting, over quota, key held)."""
        body = {"prompt": PROMPT, "seconds": "1", "steps": self.config.steps, "seed": i}
        try:
            response = http.post("/videos", json=body, headers={"Idempotency-Key": f"{tenant}-video-{i}"})
        except httpx.HTTPError:
            return False
        if response.status_code == 200:
            with self.lock:
                self.accepted[response.json()["id"]] = tenant
                self.created_at[response.json()["id"]] = time.time()
            return True
        starting = response.status_code == 404 and "error" not in response.text  # Serve's proxy, app not yet up
        assert starting or response.status_code in (429, 409, 500, 502, 503, 504), response.text
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


def run_drill(workdir: Path, database_url: str, config: DrillConfig) -> DrillResult:
    """Run the workload against a fresh `reelforge serve` until every accepted video has ended."""
    rng = random.Random(config.seed)
    home = workdir / "home"
    serve_file = serve_config(workdir / "serve.yaml", home, database_url, config.quota)
    env = {**os.environ, "REELFORGE_HOME": str(home)}
    env.pop("RAY_ADDRESS", None)
    tenants = TenantStore(database_url)
    keys = {f"tenant{i}": tenants.create(f"tenant{i}")[1] for i in range(config.tenants)}
    jobs = VideoJobStore(database_url)
    port, log = free_port(), workdir / "serve.log"
    engine = create_engine(database_url)

    def completed() -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM videos WHERE status = 'completed'")).scalar()

    server = start_server(serve_file, port, env, log)
    started = time.perf_counter()
    sampler = QuotaSampler(database_url)
    sampler.start()
    clients = Clients(f"http://127.0.0.1:{port}/v1", keys, config)
    clients.start()
    kills: list[tuple[str, int]] = []
    try:
        if config.kills:
            process = psutil.Process(server.pid)
            # Three kills at random points of the run, in order: a generator, an ingress, the whole server.
            points = sorted(rng.sample(range(3, config.total - 12), 3))
            for role, point in zip(("generator", "VideoAPI"), points[:2]):
                wait_for_condition(lambda p=point: completed() >= p, timeout=600, retry_interval_ms=100)
                replicas = processes(process, f"ServeReplica:reelforge:{role}")
                if not replicas:
                    raise RuntimeError(f"no {role} replica among {[c.cmdline() for c in process.children(True)]}")
                rng.choice(replicas).send_signal(signal.SIGKILL)
                kills.append((role, completed()))
            wait_for_condition(lambda: completed() >= points[2], timeout=600, retry_interval_ms=100)
            kill_whole_server(process)
            kills.append(("server", completed()))
            server = start_server(serve_file, port, env, log)
        clients.join()
        if len(clients.accepted) != config.total:
            raise RuntimeError(f"only {len(clients.accepted)} of {config.total} creates were answered")

        def all_ended() -> bool:
            return all(jobs.peek(v).status in ("completed", "failed") for v in clients.accepted)

        wait_for_condition(all_ended, timeout=900, retry_interval_ms=500)
        wall_s = time.perf_counter() - started
    finally:
        sampler.stop.set()
        sampler.join()
        engine.dispose()
        if server.poll() is None:
            kill_whole_server(psutil.Process(server.pid))
    return DrillResult(clients.accepted, clients.created_at, kills, wall_s, dict(sampler.peak), sampler.samples, home)


def exactly_once_problems(result: DrillResult, database_url: str, config: DrillConfig) -> list[str]:
    """Every way the drill's outcome breaks exactly-once or the quota; empty when it holds."""
    problems = []
    jobs = VideoJobStore(database_url)
    ended = {video_id: jobs.peek(video_id) for video_id in result.accepted}
    for video_id, job in ended.items():
        if job.status != "completed":
            problems.append(f"{video_id} ended {job.status}: {job.error_code} {job.error_message}")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        per_tenant = dict(connection.execute(text("SELECT tenant, count(*) FROM videos GROUP BY tenant")).all())
        usage = Counter(connection.execute(text(f"SELECT job_id FROM {UsageRecord.__tablename__}")).scalars())
    engine.dispose()
    expected = {f"tenant{i}": config.videos_per_tenant for i in range(config.tenants)}
    if per_tenant != expected:
        problems.append(f"videos per tenant {per_tenant}, expected {expected} (a retried create made a second one?)")
    for video_id in result.accepted:
        if usage[video_id] != 1:
            problems.append(f"{video_id} has {usage[video_id]} usage rows")
    if sum(usage.values()) != config.total:
        problems.append(f"{sum(usage.values())} usage rows for {config.total} videos")
    audit, blobs = AuditLog(database_url), BlobStore(str(result.home / "blobs"))
    for tenant in expected:
        records = [e for e in audit.events(tenant, limit=10_000)[0] if e.action == VIDEO_COMPLETED]
        mine = sorted(v for v, t in result.accepted.items() if t == tenant)
        if sorted(e.subject for e in records) != mine:
            problems.append(f"{tenant}: {len(records)} video.completed records for {len(mine)} videos")
        for record in records:
            job = ended.get(record.subject)
            if job is None:
                continue
            served = blobs.read(tenant, record.subject, "video", fence=job.fence)
            if record.details["video_sha256"] != hashlib.sha256(served).hexdigest():
                problems.append(f"{record.subject}: the served file's hash is not the audited one")
    if result.quota_samples == 0:
        problems.append("the quota was never sampled")
    over = {t: n for t, n in result.peak_active.items() if n > config.quota}
    if over:
        problems.append(f"tenants over their quota of {config.quota} at some sample: {over}")
    return problems
