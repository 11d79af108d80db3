"""Settings: one object, every default in one place, every override from the environment."""

from __future__ import annotations

from pathlib import Path

from reelforge.settings import Settings, model_path_env_var


def test_defaults_live_under_home(tmp_path: Path):
    s = Settings.from_env({"REELFORGE_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.resolved_mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'reelforge.db'}"
    assert s.resolved_storage_url == str(tmp_path / "blobs")
    assert s.models_dir == tmp_path / "models"


def test_a_relative_home_is_made_absolute_so_ray_workers_find_the_same_stores(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(home=Path("runs/home"))
    assert s.home == tmp_path / "runs" / "home"
    assert s.resolved_mlflow_tracking_uri == f"sqlite:///{tmp_path / 'runs' / 'home' / 'mlflow.db'}"


def test_environment_overrides(tmp_path: Path):
    s = Settings.from_env(
        {
            "REELFORGE_HOME": str(tmp_path),
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "REELFORGE_DATABASE_URL": "postgresql://127.0.0.1/test",
            "REELFORGE_STORAGE_URL": "s3://bucket/reelforge",
            "RAY_ADDRESS": "127.0.0.1:6380",
            model_path_env_var("wan2.1-t2v-1.3b"): "/models/wan13",
        }
    )
    assert s.resolved_mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert s.resolved_database_url == "postgresql://127.0.0.1/test"
    assert s.resolved_storage_url == "s3://bucket/reelforge"
    assert s.ray_address == "127.0.0.1:6380"
    assert s.model_path_for("wan2.1-t2v-1.3b") == Path("/models/wan13")
    assert s.model_path_for("wan2.1-t2v-14b") is None


def test_env_var_names_are_shell_safe():
    assert model_path_env_var("wan2.1-t2v-1.3b") == "REELFORGE_MODEL_PATH_WAN2_1_T2V_1_3B"
