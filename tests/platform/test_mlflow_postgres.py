"""MLflow on the local PostgreSQL server (a cluster's tracking store): runs, the adapter registry,
aliases and the serving lookup work there exactly as on the embedded SQLite store."""

from __future__ import annotations

from reelforge.jobs.adapter_registry import (
    PRODUCTION,
    alias_version,
    import_adapter,
    list_versions,
    promote,
)
from reelforge.jobs.run_tracking import (
    experiment_name,
    tenant_experiment_id,
    tracking_client,
)
from reelforge.settings import Settings
from tests.harness import BASE, FIXTURE_ADAPTERS


def test_runs_registry_and_aliases_on_postgres(postgres_url, tmp_path):
    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=postgres_url)
    client = tracking_client(settings)
    experiment = tenant_experiment_id(client, settings, "acme")
    run = client.create_run(experiment, tags={"reelforge.tenant": "acme"})
    for step, loss in enumerate((0.5, 0.4, 0.3)):
        client.log_metric(run.info.run_id, "train/loss", loss, step=step)
    client.set_terminated(run.info.run_id, "FINISHED")
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0.5, 0.4, 0.3]
    assert client.get_experiment_by_name(experiment_name("acme")).experiment_id == experiment
    assert client.get_experiment(experiment).artifact_location.startswith((tmp_path / "home").resolve().as_uri())

    first = import_adapter(settings, "acme", "brand", BASE, FIXTURE_ADAPTERS / "lower-third-orange")
    second = import_adapter(settings, "acme", "brand", BASE, FIXTURE_ADAPTERS / "top-stripe-teal")
    assert [v.version for v in list_versions(settings, first.name)] == [2, 1]
    promote(settings, first.name, 1)
    assert alias_version(settings, first.name, PRODUCTION).version == 1
    promote(settings, first.name, second.version)
    assert alias_version(settings, first.name, PRODUCTION).version == 2
    # What the server stores is PostgreSQL, not a file beside the home.
    assert not (settings.home / "mlflow.db").exists()
