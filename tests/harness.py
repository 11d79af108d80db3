"""The test harness every suite shares: run the CLI, start Ray and Serve apps, make footage archives,
check OpenAI error bodies. Fixtures live in the conftest files and build on these."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.adapter_registry import import_adapter, promote
from reelforge.jobs.ray_cluster import ensure_ray
from reelforge.models.video_io import Video
from reelforge.platform.api.app import create_api
from reelforge.platform.api.dependencies import PlatformServices
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.file_service import FileService
from reelforge.platform.fine_tuning.service import FineTuneService
from reelforge.platform.fine_tuning.upload_validation import UploadValidator
from reelforge.platform.serving.generation_limits import ModelCapabilities
from reelforge.platform.serving.video_service import VideoService
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore, new_job_id
from reelforge.platform.stores.idempotency_keys import IdempotencyStore
from reelforge.platform.stores.tenants import TenantStore
from reelforge.platform.stores.video_jobs import VideoJob, VideoJobStore
from reelforge.settings import Settings


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


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run `reelforge ARGS` in-process through `main()` (the real exit-code mapping)."""
    from reelforge.cli.main import main

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ensure_ray(Settings(home=home), dashboard=True, dashboard_port=port)


FIXTURE_ADAPTERS = Path(__file__).resolve().parent / "fixtures" / "adapters"

BASE = "reelforge-tiny"

PROMPT = "a red circle moving left on a white background"


def settled_file(http, url: str, timeout: float = 120) -> dict:
    """The file at `url` (`/v1/files/<id>`) once its background validation made it `processed` or `error`."""
    found: dict = {}

    def settled() -> bool:
        found.update(http.get(url).json())
        return found["status"] != "uploaded"

    wait_for_condition(settled, timeout=timeout, retry_interval_ms=100)
    return found


def zip_folder(folder: Path) -> bytes:
    """A .zip of a folder's files (flat), as a tenant uploads footage."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


@contextlib.contextmanager
def s3_server(bucket: str = "reelforge"):
    """A real S3-protocol server (moto's standalone server) on a loopback port, with `bucket` made;
    yields the environment a process needs to reach it."""
    import boto3

    port = free_port()
    log = open(os.devnull, "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "reelforge-test",
        "AWS_SECRET_ACCESS_KEY": "reelforge-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def answering() -> bool:
        try:
            return httpx.get(env["AWS_ENDPOINT_URL"], timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for_condition(answering, timeout=60, retry_interval_ms=200)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_aws_credentials(env))
        client.create_bucket(Bucket=bucket)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _aws_credentials(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Platform:
    """A deployed reelforge app: where it answers and the stores behind it."""

    name: str
    base_url: str  # ends in /v1
    config: ServeAppConfig

    @property
    def settings(self) -> Settings:
        return self.config.settings()

    @property
    def tenants(self) -> TenantStore:
        return TenantStore(self.config.database_url)

    @property
    def jobs(self) -> VideoJobStore:
        return VideoJobStore(self.config.database_url)

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)


def deploy_platform(name: str, port: int, home: Path, **config) -> Platform:
    """Deploy reelforge as Serve application `name` under route prefix /`name`."""
    from ray import serve

    from reelforge.platform.serving.app_builder import build_app

    app_config = ServeAppConfig.model_validate({"home": str(home), **config}).pinned()
    serve.run(build_app(app_config), name=name, route_prefix=f"/{name}")
    return Platform(name, f"http://127.0.0.1:{port}/{name}/v1", app_config)


def register_fixture_adapter(settings: Settings, tenant: str, suffix: str, fixture: str) -> str:
    """Import a shipped test adapter as `tenant`'s `suffix` adapter, promote it, return its ft: id."""
    version = import_adapter(settings, tenant, suffix, BASE, FIXTURE_ADAPTERS / fixture)
    promote(settings, version.name, version.version)
    return version.fine_tuned_model


# Test-sized fine-tuning jobs, and the tenant policies test_fine_tuning_api.py exercises.
FINE_TUNING = {
    "job_defaults": {
        "workers": 1,
        "world_eval_prompts": 0,
        "validation_videos": 0,
        "holdout_fraction": 0.0,
        "warmup_steps": 10,
        "eval_every": 1000,
        "checkpoint_every": 100,
    },
    "poll_interval_s": 0.5,
    "default": {"concurrent_jobs": 2, "max_steps": 5000},
    "tenants": {
        "brandco": {"auto_promote": True, "max_steps": 5000},
        "tight": {"concurrent_jobs": 1, "max_steps": 50, "max_upload_bytes": 16 * 1024},
        "careful": {"require_rights": True},
    },
}

# The server every machine runs (CI's included); REELFORGE_TEST_DATABASE_URL points elsewhere.
ADMIN_URL = os.environ.get("REELFORGE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server at ADMIN_URL cannot create a database."""


@contextlib.contextmanager
def fresh_postgres_database():
    """The URL of a new, empty PostgreSQL database on the ADMIN_URL server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from reelforge.platform.stores.database import dispose_engine

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"reelforge_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.dispose()
        raise PostgresUnavailable(f"PostgreSQL at {ADMIN_URL} is not usable: {exc}") from exc
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def assert_openai_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


TINY = ModelCapabilities(
    model="reelforge-tiny",
    fps=8.0,
    allowed_seconds=(1, 2),
    default_seconds=2,
    size_multiple=16,
    max_width=64,
    max_height=64,
    default_size="32x32",
)


class ApiClients:
    """The API app without Ray (real stores under `home`), a TestClient per tenant, and the services behind it.

    The one stand-in is the generators' capabilities call, which isolates the routes from Serve handles.
    """

    def __init__(self, home: Path, caps: ModelCapabilities | None = None, **overrides) -> None:
        served = caps or TINY
        config = ServeAppConfig.model_validate(
            {
                "home": str(home),
                "quotas": {"requests_per_minute": 1000, "concurrent_jobs": 3},
                "max_request_bytes": 64 * 1024,
                "moderation": {"tenants": {"acme": {"blocked_terms": ["competitor"]}}},
                **overrides,
            }
        )
        self.wakes = 0

        async def capabilities(_base_model: str) -> ModelCapabilities:
            return served

        def woken() -> None:
            self.wakes += 1

        videos = VideoService(config)
        files = FileService(config)
        self.services = PlatformServices(
            config=config,
            videos=videos,
            files=files,
            validations=UploadValidator(files),
            fine_tunes=FineTuneService(config),
            idempotency=IdempotencyStore(videos.settings.resolved_database_url),
            capabilities=capabilities,
            video_created=woken,
        )
        self.app = create_api(self.services)
        _, acme_key = videos.tenants.create("acme")
        _, globex_key = videos.tenants.create("globex")
        self.acme = TestClient(self.app, headers={"Authorization": f"Bearer {acme_key}"})
        self.globex = TestClient(self.app, headers={"Authorization": f"Bearer {globex_key}"})
        self.anonymous = TestClient(self.app)


def start_server(config: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    """`reelforge serve --config CONFIG` in a subprocess, returned once /healthz answers."""
    handle = log.open("a")
    server = subprocess.Popen(
        [sys.executable, "-m", "reelforge", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"reelforge serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for_condition(healthy, timeout=180, retry_interval_ms=500)
    return server


def stop_server(server: subprocess.Popen) -> int:
    """Stop it as Ctrl-C would; its exit code."""
    server.send_signal(signal.SIGTERM)
    return server.wait(timeout=120)


def video_job(tenant: str = "acme", deployment: str = "generator-reelforge-tiny", **fields) -> VideoJob:
    """A video job row as the API records one for reelforge-tiny (any field overridable)."""
    values = {
        "model": BASE,
        "base_model": BASE,
        "adapter": None,
        "prompt": "a red circle",
        "seconds": "2",
        "size": "32x32",
        "num_frames": 17,
        "fps": 8.0,
        "seed": 0,
    }
    return VideoJob(tenant=tenant, deployment=deployment, **(values | fields))


def queued_fine_tune_job(
    store: FineTuneStore, tenant: str = "acme", training_file: str = "file-1", workers: int = 2
) -> str:
    """A fine-tuning job recorded and queued as FineTuneService.create leaves one whose files are valid."""
    job_id = new_job_id()
    store.create(
        id=job_id,
        tenant=tenant,
        model=BASE,
        model_path=None,
        training_file=training_file,
        validation_file=None,
        suffix="brand",
        seed=0,
        hyperparameters={},
        config={},
        metadata_=None,
        auto_promote=False,
        workers=workers,
    )
    store.mark_queued(job_id)
    return job_id
