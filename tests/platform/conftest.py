"""Platform fixtures: Serve on a free loopback port, deployed reelforge apps, tenants, registered adapters."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from reelforge.jobs.adapter_registry import import_adapter, promote
from reelforge.platform.database import dispose_engine
from reelforge.platform.job_store import JobStore
from reelforge.platform.serve_config import ServeAppConfig
from reelforge.platform.tenant_store import TenantStore
from reelforge.settings import Settings

FIXTURE_ADAPTERS = Path(__file__).resolve().parents[1] / "fixtures" / "adapters"
BASE = "reelforge-tiny"
PROMPT = "a red circle moving left on a white background"


def zip_folder(folder: Path) -> bytes:
    """A .zip of a folder's files (flat), as a tenant uploads footage."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_port(ray_cluster) -> int:
    """Serve's HTTP proxy, started once on a free loopback port."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


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
    def jobs(self) -> JobStore:
        return JobStore(self.config.database_url)

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)


def deploy_platform(name: str, port: int, home: Path, **config) -> Platform:
    """Deploy reelforge as Serve application `name` under route prefix /`name`."""
    from ray import serve

    from reelforge.platform.serve_app import build_app

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
    "job_defaults": {"workers": 1, "world_eval_prompts": 0, "validation_videos": 0, "holdout_fraction": 0.0,
                     "warmup_steps": 10, "eval_every": 1000, "checkpoint_every": 100},
    "poll_interval_s": 0.5,
    "default": {"concurrent_jobs": 2, "max_steps": 5000},
    "tenants": {"brandco": {"auto_promote": True, "max_steps": 5000},
                "tight": {"concurrent_jobs": 1, "max_steps": 50, "max_upload_bytes": 16 * 1024},
                "careful": {"require_rights": True}},
}


@pytest.fixture(scope="session")
def api_platform(serve_port, tmp_path_factory) -> Platform:
    """One shared app for the API tests: a single generator replica, test-sized quotas."""
    from ray import serve

    platform = deploy_platform(
        "api", serve_port, tmp_path_factory.mktemp("api-home"),
        generators=[{"num_cpus": 0.5, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}],
        quotas={"requests_per_minute": 1000, "concurrent_jobs": 50}, max_request_bytes=64 * 1024,
        max_upload_bytes=1 << 20, moderation={"tenants": {"strict": {"blocked_terms": ["competitor"]}}},
        poll_after_ms=100, dispatch_interval_s=0.2, fine_tuning=FINE_TUNING,
    )
    yield platform
    serve.delete(platform.name)


# The server every machine runs (CI's included); REELFORGE_TEST_DATABASE_URL points elsewhere.
ADMIN_URL = os.environ.get("REELFORGE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"reelforge_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # the brief promises PostgreSQL on every machine; say so if it is not there
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is not usable: {exc}")
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engine(url)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()
