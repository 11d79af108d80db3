"""The supervisor's decisions against the Ray Jobs API's answers.

The Jobs API is replaced by `FakeJobsApi` to isolate the supervisor's state machine (submit once,
fail a dead driver with its log, stop a cancelled job before settling it, forget a job the cluster
lost) from Ray itself; the real Ray Jobs path runs in test_fine_tuning_api.py. The job store and
usage meter are the real ones, on SQLite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import pytest
from sqlalchemy import update

from reelforge.jobs.run_tracking import TAG_PREFIX, tenant_experiment_id, tracking_client
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.supervisor import FineTuneSupervisor
from reelforge.platform.stores.fine_tune_jobs import FineTuneJob, FineTuneStore
from reelforge.platform.stores.usage import TRAINING, UsageMeter
from tests.harness import queued_fine_tune_job


class Status(Enum):
    PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"


@dataclass
class Info:
    status: Status
    message: str = ""
    end_time: int | None = None


class FakeJobsApi:
    """Answers like JobSubmissionClient: submit, status, logs, stop, and 404 for unknown ids."""

    def __init__(self) -> None:
        self.jobs: dict[str, Info] = {}
        self.submitted: list[str] = []
        self.stopped: list[str] = []
        self.entrypoint_resources: list[dict | None] = []
        self.logs = "Traceback ...\nMemoryError: out of memory in the driver\n"

    def submit_job(
        self,
        entrypoint: str,
        submission_id: str,
        runtime_env: dict,
        metadata: dict,
        entrypoint_resources: dict | None = None,
    ) -> str:
        if submission_id in self.jobs:
            raise RuntimeError(
                f"Request failed with status code 400: Job with submission_id {submission_id} already exists."
            )
        assert (
            "reelforge.platform.fine_tuning.driver" in entrypoint
            and "REELFORGE_DATABASE_URL" in runtime_env["env_vars"]
        )
        self.jobs[submission_id] = Info(Status.PENDING)
        self.submitted.append(submission_id)
        self.entrypoint_resources.append(entrypoint_resources)
        return submission_id

    def get_job_info(self, submission_id: str) -> Info:
        if submission_id not in self.jobs:
            raise RuntimeError(f"Request failed with status code 404: Job {submission_id} does not exist.")
        return self.jobs[submission_id]

    def get_job_logs(self, submission_id: str) -> str:
        return self.logs

    def stop_job(self, submission_id: str) -> bool:
        self.stopped.append(submission_id)
        return True


@pytest.fixture
def setup(tmp_path):
    config = ServeAppConfig.model_validate({"home": str(tmp_path)}).pinned()
    supervisor = FineTuneSupervisor(config)
    supervisor._client = api = FakeJobsApi()
    return supervisor, api, FineTuneStore(config.database_url), UsageMeter(config.database_url)


def _job(store: FineTuneStore, tenant: str = "acme") -> str:
    return queued_fine_tune_job(store, tenant)


def test_a_job_is_submitted_once_even_when_another_replica_did_it_first(setup):
    supervisor, api, store, _ = setup
    job_id = _job(store)
    api.jobs[job_id] = Info(Status.PENDING)  # another ingress replica submitted it already
    supervisor.supervise_once()
    supervisor.supervise_once()
    assert api.submitted == [] and store.get(None, job_id).status == "queued"
    assert store.get(None, job_id).submission_id == job_id


def test_drivers_ask_for_the_configured_resources(tmp_path):
    config = ServeAppConfig.model_validate(
        {"home": str(tmp_path), "fine_tuning": {"driver_resources": {"train-node": 0.001}}}
    ).pinned()
    supervisor = FineTuneSupervisor(config)
    supervisor._client = api = FakeJobsApi()
    queued_fine_tune_job(FineTuneStore(config.database_url), "acme")
    supervisor.supervise_once()
    assert api.entrypoint_resources == [{"train-node": 0.001}]


def test_drivers_go_anywhere_by_default(setup):
    supervisor, api, store, _ = setup
    _job(store)
    supervisor.supervise_once()
    assert api.entrypoint_resources == [None]


def test_a_driver_that_dies_is_resubmitted_then_fails_with_its_log_and_is_metered_once(setup):
    supervisor, api, store, meter = setup
    supervisor.config.fine_tuning.max_driver_restarts = 1
    job_id = _job(store)
    supervisor.supervise_once()
    store.mark_running(job_id, "cpu", 2, 100)
    supervisor.supervise_once()
    assert store.get(None, job_id).status == "running"  # still running: nothing to do
    started = store.get(None, job_id).started_at
    api.jobs[job_id] = Info(Status.FAILED, "exit code 1", end_time=int((started + 10) * 1000))
    supervisor.supervise_once()
    # A driver that died unsettled gets a new one, which resumes from the last checkpoint.
    job = store.get(None, job_id)
    assert (job.status, job.submission_id) == ("running", f"{job_id}-r1") and api.submitted == [job_id, f"{job_id}-r1"]
    events = [e.message for e in store.events("acme", job_id, None, 100)[0]]
    assert "resubmitted as Ray Job " + f"{job_id}-r1 to resume from the last checkpoint (restart 1 of 1)" in events[0]
    api.jobs[f"{job_id}-r1"] = Info(Status.FAILED, "exit code 1", end_time=int((started + 30) * 1000))
    supervisor.supervise_once()  # its restarts are spent: the job fails with the log
    job = store.get(None, job_id)
    assert (job.status, job.error_code) == ("failed", "training_failed") and "MemoryError" in job.error_message
    supervisor.supervise_once()  # settled: a second pass records nothing more
    usage = meter.summary("acme")
    assert [(u.kind, u.jobs, u.device) for u in usage] == [(TRAINING, 1, "cpu")]
    assert usage[0].seconds == pytest.approx(60.0, abs=0.5)  # 30 s of training x 2 workers, both drivers


def test_a_job_past_its_time_limit_is_stopped_and_failed_and_the_queue_moves_on(setup):
    supervisor, api, store, _ = setup
    supervisor.config.fine_tuning.job_timeout_s = 60
    hung, waiting = _job(store, "acme"), _job(store, "globex")
    supervisor.supervise_once()
    store.mark_running(hung, "cpu", 1, 10)
    api.jobs[hung] = Info(Status.RUNNING)
    with store._session.begin() as session:  # as if it started two minutes ago and never progressed
        session.execute(update(FineTuneJob).where(FineTuneJob.id == hung).values(started_at=time.time() - 120))
    supervisor.supervise_once()
    job = store.get(None, hung)
    assert (job.status, job.error_code) == ("failed", "timeout") and "time limit of 60 s" in job.error_message
    assert api.stopped == [hung]
    api.jobs[hung] = Info(Status.STOPPED, end_time=None)
    supervisor.supervise_once()
    assert store.get(None, hung).metered and api.submitted == [hung, waiting]


def test_a_cancelled_job_is_stopped_then_settled_after_ray_says_stopped(setup, tmp_path):
    supervisor, api, store, meter = setup
    job_id = _job(store)
    supervisor.supervise_once()
    store.cancel("acme", job_id)
    supervisor.supervise_once()
    assert api.stopped == [job_id] and not store.get(None, job_id).metered
    api.jobs[job_id] = Info(Status.STOPPED, end_time=None)
    supervisor.supervise_once()
    assert store.get(None, job_id).metered and store.get(None, job_id).status == "cancelled"
    assert [(u.kind, u.jobs, u.seconds) for u in meter.summary("acme")] == [(TRAINING, 1, 0.0)]  # never trained


def test_a_job_the_cluster_forgot_is_resubmitted_then_fails_instead_of_being_followed_forever(setup):
    supervisor, api, store, _ = setup
    supervisor.config.fine_tuning.max_driver_restarts = 1
    job_id = _job(store)
    supervisor.supervise_once()
    api.jobs.clear()  # the cluster was restarted: a new driver resumes from shared storage
    supervisor.supervise_once()
    assert store.get(None, job_id).submission_id == f"{job_id}-r1" and api.submitted[-1] == f"{job_id}-r1"
    api.jobs.clear()  # and restarted again: the restarts are spent
    supervisor.supervise_once()
    job = store.get(None, job_id)
    assert job.status == "failed" and "no longer known" in job.error_message and job.metered
    assert store.in_flight() == []


def test_a_job_cancelled_before_submission_never_reaches_the_cluster(setup):
    supervisor, api, store, _ = setup
    job_id = _job(store)
    store.cancel("acme", job_id)
    supervisor.supervise_once()
    assert api.submitted == [] and store.in_flight() == []


def test_jobs_wait_their_turn_beyond_the_cluster_wide_limit(setup):
    supervisor, api, store, _ = setup
    first, second = _job(store, "acme"), _job(store, "globex")
    supervisor.supervise_once()
    assert api.submitted == [first] and store.get(None, second).submission_id is None
    store.mark_running(first, "cpu", 1, 10)
    store.succeed(first, "ft:reelforge-tiny:acme:brand@1")
    api.jobs[first] = Info(Status.SUCCEEDED, end_time=None)
    supervisor.supervise_once()  # the first is settled, the second goes
    assert api.submitted == [first, second] and store.get(None, second).submission_id == second


def test_one_jobs_error_is_recorded_on_it_and_the_pass_goes_on(setup):
    supervisor, api, store, meter = setup
    broken, healthy = _job(store, "acme"), _job(store, "globex")
    supervisor.config.fine_tuning.max_running_jobs = 2
    supervisor.supervise_once()
    real_info = api.get_job_info

    def get_job_info(submission_id: str) -> Info:
        if submission_id == broken:
            raise ConnectionResetError("the Jobs API dropped the connection")
        return real_info(submission_id)

    api.get_job_info = get_job_info
    store.mark_running(healthy, "cpu", 1, 10)
    store.succeed(healthy, "ft:reelforge-tiny:globex:brand@1")
    api.jobs[healthy] = Info(Status.SUCCEEDED, end_time=None)
    supervisor.supervise_once()
    supervisor.supervise_once()  # the same error again is not recorded twice
    assert store.get(None, healthy).metered  # the broken job did not stop the pass
    warnings = [e.message for e in store.events("acme", broken, None, 100)[0] if e.level == "warn"]
    assert len(warnings) == 1 and "ConnectionResetError" in warnings[0]
    assert store.get(None, broken).status == "queued"  # and it is tried again next pass


def _register_for(supervisor: FineTuneSupervisor, job_id: str, tmp_path) -> tuple[str, str]:
    """A registry version created by a run of `job_id`, as the driver's registration makes it."""
    settings = supervisor.config.settings()
    client = tracking_client(settings)
    run = client.create_run(tenant_experiment_id(client, settings, "acme"), tags={f"{TAG_PREFIX}job_id": job_id})
    adapter = tmp_path / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    client.log_artifacts(run.info.run_id, str(adapter), "adapter")
    name = "acme.brand.reelforge-tiny"
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/adapter", run.info.run_id)
    return name, str(version.version)


@pytest.mark.parametrize("recorded", [False, True], ids=["version-not-yet-recorded", "version-already-removed"])
def test_a_cancel_during_registration_leaves_no_version(setup, tmp_path, recorded):
    supervisor, api, store, _ = setup
    job_id = _job(store)
    supervisor.supervise_once()
    name, version = _register_for(supervisor, job_id, tmp_path)
    client = tracking_client(supervisor.config.settings())
    if recorded:  # the driver recorded it and removed it itself when it saw the cancel
        store.set_registered(job_id, f"{name}/{version}")
        client.delete_model_version(name, version)
    store.cancel("acme", job_id)
    supervisor.supervise_once()
    api.jobs[job_id] = Info(Status.STOPPED, end_time=None)
    supervisor.supervise_once()
    supervisor.supervise_once()
    assert client.search_model_versions(f"name = '{name}'") == []
    job = store.get(None, job_id)
    assert job.status == "cancelled" and job.metered and store.in_flight() == []
