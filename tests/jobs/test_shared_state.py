"""Which settings keep state on one node, and the refusal that names them on a multi-node cluster
(the real two-node refusal runs in test_share_nothing_cluster.py)."""

from __future__ import annotations

import pytest

from reelforge.jobs.shared_state import SplitStateError, local_state, refuse_split_state
from reelforge.settings import Settings

SHARED = {
    "database_url": "postgresql+psycopg://reelforge@db/reelforge",
    "mlflow_tracking_uri": "http://mlflow:5000",
    "storage_url": "s3://reelforge/blobs",
    "train_storage_url": "s3://reelforge/ray-results",
}


def test_the_single_machine_defaults_are_all_local(tmp_path):
    found = {p.setting.split()[0] for p in local_state(Settings(home=tmp_path))}
    assert found == {"database_url", "mlflow_tracking_uri", "storage_url", "train_storage_url", "mlflow_artifact_url"}


def test_shared_services_and_object_storage_pass(tmp_path):
    assert local_state(Settings(home=tmp_path, **SHARED)) == []
    # A PostgreSQL MLflow store and a declared shared mount are shared too.
    on_nfs = Settings(
        home=tmp_path,
        database_url=SHARED["database_url"],
        mlflow_tracking_uri=SHARED["database_url"],
        shared_filesystem=True,
    )
    assert local_state(on_nfs) == []
    on_s3 = Settings(
        home=tmp_path,
        **(SHARED | {"mlflow_tracking_uri": SHARED["database_url"], "mlflow_artifact_url": "s3://reelforge/mlflow/"}),
    )
    assert local_state(on_s3) == [] and on_s3.resolved_mlflow_artifact_url == "s3://reelforge/mlflow"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"database_url": "sqlite:////tmp/x.db"}, "REELFORGE_DATABASE_URL"),
        ({"mlflow_tracking_uri": "file:///tmp/mlruns"}, "MLFLOW_TRACKING_URI"),
        ({"mlflow_tracking_uri": "sqlite:////tmp/mlflow.db"}, "MLFLOW_TRACKING_URI"),
        ({"storage_url": "/srv/blobs"}, "REELFORGE_STORAGE_URL"),
        ({"train_storage_url": "file:///srv/ray"}, "REELFORGE_TRAIN_STORAGE"),
        # A PostgreSQL MLflow store keeps artifacts where the experiment says: under the home unless told.
        ({"mlflow_tracking_uri": "postgresql+psycopg://reelforge@db/mlflow"}, "REELFORGE_MLFLOW_ARTIFACTS"),
    ],
)
def test_each_local_setting_is_refused_by_name_on_two_nodes_only(tmp_path, override, named):
    settings = Settings(home=tmp_path, **(SHARED | override))
    refuse_split_state(settings, 1, "serving")  # one machine: the defaults are right
    with pytest.raises(SplitStateError, match=named) as refused:
        refuse_split_state(settings, 3, "serving")
    assert refused.value.message.startswith("serving on a 3-node Ray cluster")


def test_the_environment_declares_shared_storage(monkeypatch):
    monkeypatch.setenv("REELFORGE_SHARED_FILESYSTEM", "1")
    monkeypatch.setenv("REELFORGE_TRAIN_STORAGE", "/mnt/shared/ray")
    settings = Settings.from_env()
    assert settings.shared_filesystem and settings.resolved_train_storage_url == "/mnt/shared/ray"
    monkeypatch.setenv("REELFORGE_MLFLOW_ARTIFACTS", "s3://reelforge/mlflow")
    assert Settings.from_env().mlflow_artifact_url == "s3://reelforge/mlflow"
