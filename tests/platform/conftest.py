"""Platform fixtures: Serve on a free loopback port, deployed reelforge apps, tenants, registered adapters."""

from __future__ import annotations

import pytest

from tests.harness import (
    FINE_TUNING,
    ApiClients,
    Platform,
    PostgresUnavailable,
    deploy_platform,
    free_port,
    fresh_postgres_database,
)


@pytest.fixture(scope="session")
def serve_port(ray_cluster) -> int:
    """Serve's HTTP proxy, started once on a free loopback port."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


@pytest.fixture(scope="session")
def api_platform(serve_port, tmp_path_factory) -> Platform:
    """One shared app for the API tests: a single generator replica, test-sized quotas."""
    from ray import serve

    platform = deploy_platform(
        "api",
        serve_port,
        tmp_path_factory.mktemp("api-home"),
        generators=[{"num_cpus": 0.5, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}],
        quotas={"requests_per_minute": 1000, "concurrent_jobs": 50},
        max_request_bytes=64 * 1024,
        max_upload_bytes=1 << 20,
        moderation={"tenants": {"strict": {"blocked_terms": ["competitor"]}}},
        # On a 32 px frame the AI-content label fills a quarter of the picture, where the look analyzer
        # would read it as a top stripe: the two tenants whose brand looks it measures are unlabelled.
        provenance={
            "labels": {
                "allow_unlabelled": True,
                "tenants": {
                    "northwind": {"enabled": False},
                    "contoso": {"enabled": False},
                    "pixelworks": {"enabled": False},  # the first-frame PSNR check reads the whole frame
                },
            }
        },
        poll_after_ms=100,
        dispatch_interval_s=0.2,
        fine_tuning=FINE_TUNING,
    )
    yield platform
    serve.delete(platform.name)


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        with fresh_postgres_database() as url:
            yield url
    except PostgresUnavailable as exc:  # the brief promises PostgreSQL on every machine; say so if it is not there
        pytest.fail(str(exc))


@pytest.fixture
def api(tmp_path) -> ApiClients:
    """The API app through FastAPI's TestClient, on real stores under a temporary home (no Ray)."""
    return ApiClients(tmp_path / "home")


@pytest.fixture
def s3_env(monkeypatch):
    """A real S3-protocol server on loopback (moto's), its bucket `reelforge`, and this process pointed at it."""
    from tests.harness import s3_server

    with s3_server() as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield env
