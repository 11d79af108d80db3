"""Serving trusts the SHA-256 the platform recorded when it registered an adapter version, not the
MLflow registry it downloads from: an artifact swapped after registration, even with the registry's
tag edited to match, is refused at load; so is a version the platform never registered.

Real MLflow (the home's local store), real platform database (SQLite), a real fixture adapter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reelforge.errors import AdapterError
from reelforge.jobs.adapter_registry import adapter_sha256, import_adapter
from reelforge.jobs.run_tracking import TAG_PREFIX, tenant_experiment_id, tracking_client
from reelforge.platform.serving.adapter_loader import AdapterRef, fetch_adapter
from reelforge.platform.stores.adapter_digests import AdapterDigestStore
from reelforge.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "adapters"


def test_a_registered_adapter_loads_and_its_digest_is_the_platforms(settings: Settings):
    version = import_adapter(settings, "acme", "look", "reelforge-tiny", FIXTURES / "lower-third-orange")
    recorded = AdapterDigestStore(settings.resolved_database_url).expected(version.name, version.version)
    assert recorded.sha256 == adapter_sha256(FIXTURES / "lower-third-orange") and recorded.tenant == "acme"
    fetched = fetch_adapter(settings, AdapterRef(version.name, version.version))
    assert adapter_sha256(fetched) == recorded.sha256


def test_an_artifact_swapped_in_the_registry_is_refused_even_with_its_tag_rewritten(settings: Settings):
    version = import_adapter(settings, "acme", "look", "reelforge-tiny", FIXTURES / "lower-third-orange")
    # Someone with write access to the registry's artifact store swaps the weights for another
    # tenant's look, and rewrites the version's hash tag to match.
    client = tracking_client(settings)
    stored = Path(client.get_run(version.run_id).info.artifact_uri.removeprefix("file://")) / "adapter"
    for path in (FIXTURES / "top-stripe-teal").iterdir():
        shutil.copy(path, stored / path.name)
    client.set_model_version_tag(
        version.name, str(version.version), f"{TAG_PREFIX}adapter_sha256", adapter_sha256(stored)
    )
    with pytest.raises(AdapterError, match="does not match the SHA-256 recorded when it was registered"):
        fetch_adapter(settings, AdapterRef(version.name, version.version))
    assert not (settings.home / "adapter-cache" / version.name / str(version.version)).exists()


def test_a_version_the_platform_never_registered_is_refused(settings: Settings):
    # Created straight in the registry (as anyone with registry access could), not through the platform.
    client = tracking_client(settings)
    run = client.create_run(tenant_experiment_id(client, settings, "acme"))
    client.log_artifacts(run.info.run_id, str(FIXTURES / "lower-third-orange"), "adapter")
    name = "acme.look.reelforge-tiny"
    client.create_registered_model(name)
    made = client.create_model_version(
        name,
        f"{run.info.artifact_uri}/adapter",
        run.info.run_id,
        tags={f"{TAG_PREFIX}adapter_sha256": adapter_sha256(FIXTURES / "lower-third-orange")},
    )
    with pytest.raises(AdapterError, match="not registered through this platform"):
        fetch_adapter(settings, AdapterRef(name, int(made.version)))


def test_a_reused_version_number_does_not_serve_the_cached_copy_of_the_old_adapter(settings: Settings):
    first = import_adapter(settings, "acme", "look", "reelforge-tiny", FIXTURES / "lower-third-orange")
    fetch_adapter(settings, AdapterRef(first.name, first.version))  # cached on this node
    client = tracking_client(settings)
    client.delete_registered_model(first.name)  # the registry starts its versions at 1 again
    second = import_adapter(settings, "acme", "look", "reelforge-tiny", FIXTURES / "top-stripe-teal")
    assert second.version == first.version
    fetched = fetch_adapter(settings, AdapterRef(second.name, second.version))
    assert adapter_sha256(fetched) == adapter_sha256(FIXTURES / "top-stripe-teal")
