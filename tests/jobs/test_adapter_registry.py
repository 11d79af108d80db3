"""The adapter registry on a real MLflow SQLite store: versions, aliases, promote, rollback, tenant scoping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelforge.errors import UserInputError
from reelforge.jobs.adapter_registry import (
    CANDIDATE,
    PRODUCTION,
    AdapterNotFoundError,
    adapter_sha256,
    alias_version,
    list_versions,
    promote,
    register_adapter,
    registered_model_name,
    resolve_adapter_name,
    rollback,
)
from reelforge.jobs.run_tracking import tenant_experiment_id, tracking_client
from reelforge.settings import Settings
from tests.harness import run_cli


def _register(settings: Settings, tenant: str, suffix: str = "brand", job: str = "job") -> int:
    client = tracking_client(settings)
    run = client.create_run(tenant_experiment_id(client, settings, tenant))
    tags = {
        "reelforge.tenant": tenant,
        "reelforge.fine_tuned_model": f"ft:reelforge-tiny:{tenant}:{suffix}",
        "reelforge.job_id": job,
    }
    name = registered_model_name(tenant, suffix, "reelforge-tiny")
    source = f"{run.info.artifact_uri}/adapter"
    return register_adapter(settings, name, source, run.info.run_id, tags, "test", "0" * 64).version


def test_each_registration_is_a_new_version_and_moves_candidate(settings: Settings):
    assert [_register(settings, "acme", job=f"j{i}") for i in range(3)] == [1, 2, 3]
    name = "acme.brand.reelforge-tiny"
    assert resolve_adapter_name(settings, "acme") == name
    versions = list_versions(settings, name)
    assert [v.version for v in versions] == [3, 2, 1]
    assert versions[0].aliases == (CANDIDATE,) and versions[0].tags["reelforge.job_id"] == "j2"
    assert versions[0].fine_tuned_model == "ft:reelforge-tiny:acme:brand"
    assert alias_version(settings, name, PRODUCTION) is None


def test_promote_and_rollback_move_production(settings: Settings):
    for _ in range(3):
        _register(settings, "acme")
    name = resolve_adapter_name(settings, "acme")
    assert promote(settings, name, 1).version == 1
    assert promote(settings, name).version == 3  # default: the candidate
    assert alias_version(settings, name, PRODUCTION).version == 3
    assert rollback(settings, name).version == 1
    assert alias_version(settings, name, PRODUCTION).version == 1
    with pytest.raises(UserInputError, match="no earlier production version"):
        rollback(settings, name)
    with pytest.raises(AdapterNotFoundError, match="no version 9"):
        promote(settings, name, 9)


def test_tenants_only_see_their_own_adapters(settings: Settings):
    _register(settings, "acme")
    _register(settings, "acme-labs")  # a name prefix of another tenant must not leak
    assert resolve_adapter_name(settings, "acme") == "acme.brand.reelforge-tiny"
    with pytest.raises(AdapterNotFoundError, match="no registered adapters"):
        resolve_adapter_name(settings, "globex")
    with pytest.raises(AdapterNotFoundError, match="no adapter 'other'"):
        resolve_adapter_name(settings, "acme", "other")


def test_cli_promote_rollback_and_list(settings: Settings, monkeypatch, capsys):
    _register(settings, "acme")
    _register(settings, "acme")
    code, _, err = run_cli(["adapters", "promote", "--tenant", "acme", "--version", "1"], monkeypatch, capsys)
    assert code == 0 and "production -> version 1" in err
    assert run_cli(["adapters", "promote", "--tenant", "acme"], monkeypatch, capsys)[0] == 0
    code, out, _ = run_cli(["adapters", "list", "--tenant", "acme", "--json"], monkeypatch, capsys)
    import json

    aliases = {row["version"]: row["aliases"] for row in json.loads(out)}
    assert aliases == {2: ["candidate", "production"], 1: []}
    code, _, err = run_cli(["adapters", "rollback", "--tenant", "acme"], monkeypatch, capsys)
    assert code == 0 and "version 1" in err
    code, out, _ = run_cli(["adapters", "list", "--tenant", "globex"], monkeypatch, capsys)
    assert code == 0 and "globex has no registered adapters" in out  # an empty list, not another tenant's
    code, _, err = run_cli(["adapters", "promote", "--tenant", "globex"], monkeypatch, capsys)
    assert code == 2 and "no registered adapters" in err


def test_adapter_hash_covers_names_and_bytes(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"1")
    first = adapter_sha256(tmp_path / "a")
    (tmp_path / "a" / "w.bin").write_bytes(b"2")
    assert adapter_sha256(tmp_path / "a") != first


def test_import_registers_an_outside_lora_with_lineage_and_hash(settings: Settings, monkeypatch, capsys):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "lower-third-orange"
    code, _, err = run_cli(
        ["adapters", "import", str(fixture), "--tenant", "acme", "--suffix", "look", "--promote"], monkeypatch, capsys
    )
    assert code == 0, err
    version = alias_version(settings, "acme.look.reelforge-tiny", PRODUCTION)
    assert version.version == 1 and set(version.aliases) == {CANDIDATE, PRODUCTION}
    assert version.fine_tuned_model == "ft:reelforge-tiny:acme:look"
    assert version.tags["reelforge.adapter_sha256"] == adapter_sha256(fixture)
    assert version.run_id and version.source.endswith("/adapter")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--suffix", "Bad Suffix"], "adapter suffix"),
        (["--tenant", "Nope!"], "not a valid tenant"),
    ],
)
def test_import_refuses_bad_names(settings: Settings, monkeypatch, capsys, args, needle):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "lower-third-orange"
    base = {"--tenant": "acme", "--suffix": "look"}
    base.update(dict(zip(args[::2], args[1::2])))
    code, _, err = run_cli(
        ["adapters", "import", str(fixture), *[x for kv in base.items() for x in kv]], monkeypatch, capsys
    )
    assert code == 2 and needle in err


def test_import_refuses_a_directory_without_lora_weights(settings: Settings, tmp_path: Path, monkeypatch, capsys):
    code, _, err = run_cli(["adapters", "import", str(tmp_path), "--tenant", "acme"], monkeypatch, capsys)
    assert code == 2 and "holds no pytorch_lora_weights.safetensors" in err


def test_cli_promotions_and_imports_are_audited(settings: Settings, monkeypatch, capsys, tmp_path: Path):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "lower-third-orange"
    assert run_cli(["tenants", "create", "acme"], monkeypatch, capsys)[0] == 0
    assert (
        run_cli(["adapters", "import", str(fixture), "--tenant", "acme", "--suffix", "look"], monkeypatch, capsys)[0]
        == 0
    )
    assert run_cli(["adapters", "promote", "--tenant", "acme"], monkeypatch, capsys)[0] == 0
    out = tmp_path / "audit.jsonl"
    code, _, err = run_cli(["audit", "export", "--tenant", "acme", "--out", str(out)], monkeypatch, capsys)
    assert code == 0 and "exported 2 audit records" in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["action"], r["subject"]) for r in records] == [
        ("adapter.imported", "acme.look.reelforge-tiny/1"),
        ("adapter.promoted", "acme.look.reelforge-tiny/1"),
    ]
    assert all(
        r["actor"].startswith("cli:") and r["details"]["adapter_sha256"] == adapter_sha256(fixture) for r in records
    )
    code, _, err = run_cli(["audit", "export", "--tenant", "ghost"], monkeypatch, capsys)
    assert code == 2 and "no tenant named 'ghost'" in err


def test_tenant_experiments_keep_artifacts_where_the_settings_say(tmp_path: Path):
    """Under the home by default (a database store would use the process's ./mlruns); under
    `mlflow_artifact_url` on a cluster, so every node reads the adapters one node wrote."""
    home = Settings(home=tmp_path)
    client = tracking_client(home)
    default = client.get_experiment(tenant_experiment_id(client, home, "acme")).artifact_location
    assert default == (tmp_path / "mlartifacts" / "acme").resolve().as_uri()
    shared = Settings(home=tmp_path, mlflow_artifact_url="s3://reelforge/mlflow/")
    location = client.get_experiment(tenant_experiment_id(client, shared, "globex")).artifact_location
    assert location == "s3://reelforge/mlflow/globex"
