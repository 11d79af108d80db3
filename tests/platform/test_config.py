"""ServeAppConfig: defaults in one place, bad keys named, and the shipped example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.platform.config import (
    ServeConfigError,
    deployment_name,
    parse_serve_config,
    read_serve_file,
)
from reelforge.platform.serving.app_builder import build_app, generator_capacity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serve.yaml"


def test_example_serve_file_is_a_valid_app():
    config, http = read_serve_file(EXAMPLE)
    assert http == {"host": "127.0.0.1", "port": 8000}
    assert config.generators[0].model == "reelforge-tiny" and config.generators[0].autoscaling.max_replicas == 2
    assert build_app(config) is not None


def test_pinned_config_resolves_every_store(tmp_path):
    pinned = parse_serve_config({"home": str(tmp_path)}).pinned()
    assert pinned.database_url == f"sqlite:///{tmp_path / 'reelforge.db'}"
    assert pinned.storage_url == str(tmp_path / "blobs")
    assert pinned.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert pinned.mlflow_artifact_url == (tmp_path / "mlartifacts").resolve().as_uri()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"generatorz": []}, "generatorz: unknown key"),
        ({"generators": [{"autoscaling": {"min_replicas": 3, "max_replicas": 2}}]}, "below min_replicas"),
        ({"generators": [{"max_ongoing_requests": 4, "adapter_cache_size": 2}]}, "adapter_cache_size 2"),
        ({"generators": []}, "generators"),
        ({"dedicated": [{"tenant": "acme", "model": "wan"}]}, "no generator serves"),
        ({"dedicated": [{"tenant": "acme"}, {"tenant": "acme"}]}, "dedicated twice"),
        ({"quotas": {"requests_per_minute": 0}}, "quotas.requests_per_minute"),
        ({"fine_tuning": {"driver_resources": {"CPU": 1}}}, "custom resources only"),
        ({"fine_tuning": {"driver_resources": {"train-node": 0}}}, "must be > 0"),
    ],
)
def test_bad_configs_name_the_key(data, needle):
    with pytest.raises(ServeConfigError, match=needle):
        parse_serve_config(data)


def test_bad_files_are_clear(tmp_path):
    with pytest.raises(ServeConfigError, match="does not exist"):
        read_serve_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications: [{name: other, import_path: some.module:app}]")
    with pytest.raises(ServeConfigError, match="import_path reelforge.platform.serving.app_builder:build_app"):
        read_serve_file(bad)


def test_deployment_names_and_capacity():
    assert deployment_name("reelforge-tiny") == "generator-reelforge-tiny"
    assert deployment_name("Wan2.1-T2V-1.3B", "acme") == "generator-wan2-1-t2v-1-3b-acme"
    config = parse_serve_config({"generators": [{"max_ongoing_requests": 2, "autoscaling": {"max_replicas": 3}}]})
    assert generator_capacity(config.generators[0], config.generators[0].autoscaling) == 6
