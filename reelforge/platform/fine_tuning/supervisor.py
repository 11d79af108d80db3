"""Submits API fine-tuning jobs to the cluster as Ray Jobs and follows them to the end.

It runs in each ingress replica as one asyncio task (the ingress never trains). Each pass:

* a `validating_files` job whose files have been validated since is queued, or failed with the
  file's reasons (`job_admission`);
* a `queued` job (its files were validated when it was created) is submitted as a Ray Job whose
  submission id is the job id, so two ingress replicas submitting the same job create one Ray Job.
  At most `fine_tuning.max_running_jobs` are submitted at once, oldest first; the rest stay queued;
* a queued or running job whose Ray Job ended without the driver settling it (a killed driver, a
  lost head node) is resubmitted as `<job id>-r<n>`, up to `fine_tuning.max_driver_restarts`
  times: the new driver continues the same MLflow run, and Ray Train resumes the workers from the
  last checkpoint in `train_storage_url`. After that it fails with the tail of the driver's log;
* a job running longer than `fine_tuning.job_timeout_s` is stopped and failed, so one hung job
  never holds the queue;
* a cancelled job's Ray Job is stopped, and anything it left is removed: every registry version
  its runs created, whether or not the row recorded it, and an MLflow run still open;
* a finished job's usage is recorded once (device seconds = training wall time x workers).

One job's error never stops the pass: it is logged, recorded on that job, and retried next pass.
The Jobs API is plain HTTP; every call runs in a worker thread so the ingress event loop is free.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
import time

from reelforge.jobs.adapter_registry import filter_literal
from reelforge.jobs.run_tracking import (
    TAG_PREFIX,
    tenant_experiment_id,
    tracking_client,
)
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.job_admission import Admission, admit_job
from reelforge.platform.stores.blob_store import object_store_env
from reelforge.platform.stores.files import FileStore
from reelforge.platform.stores.fine_tune_jobs import (
    CANCELLED,
    QUEUED,
    RUNNING,
    TERMINAL,
    VALIDATING,
    FineTuneJob,
    FineTuneStore,
)
from reelforge.platform.stores.usage import TRAINING, UsageMeter, usage_record

logger = logging.getLogger(__name__)
RAY_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
LOG_TAIL_CHARS = 1500


class NoJobsApiError(RuntimeError):
    """The cluster has no Ray Jobs API to run fine-tuning jobs on."""


def jobs_api_url(config: ServeAppConfig) -> str:
    """The configured Ray Jobs API, else the dashboard of the cluster this process is connected to."""
    if config.fine_tuning.jobs_api_url:
        return config.fine_tuning.jobs_api_url
    from ray.experimental.internal_kv import _internal_kv_get

    # The dashboard records its own address in the GCS; `ray.get_dashboard_url()` in a worker
    # process only knows the default port.
    address = _internal_kv_get("dashboard", namespace="dashboard")
    if not address:
        raise NoJobsApiError(
            "the Ray cluster has no dashboard, so no Jobs API to run fine-tuning jobs on; start Ray "
            "with its dashboard or set fine_tuning.jobs_api_url"
        )
    return f"http://{address.decode()}"


def driver_env(config: ServeAppConfig) -> dict[str, str]:
    """Environment of the job driver: the same stores the ingress uses, wherever the driver runs."""
    settings = config.settings()
    env = {
        "REELFORGE_HOME": str(settings.home),
        "REELFORGE_DATABASE_URL": settings.resolved_database_url,
        "REELFORGE_STORAGE_URL": settings.resolved_storage_url,
        "MLFLOW_TRACKING_URI": settings.resolved_mlflow_tracking_uri,
        "REELFORGE_TRAIN_STORAGE": settings.resolved_train_storage_url,
        "REELFORGE_SHARED_FILESYSTEM": "1" if settings.shared_filesystem else "0",
    }
    if settings.resolved_mlflow_artifact_url:
        env["REELFORGE_MLFLOW_ARTIFACTS"] = settings.resolved_mlflow_artifact_url
    # The declared training shape travels too: the driver decides GPU use and placement from it.
    if settings.train_node_gpus is not None:
        env["REELFORGE_TRAIN_NODE_GPUS"] = str(settings.train_node_gpus)
    if settings.train_node_resource:
        env["REELFORGE_TRAIN_NODE_RESOURCE"] = settings.train_node_resource
    env.update({key: str(path) for key, path in settings.model_paths.items()})
    env.update(object_store_env())  # the driver fetches the tenant's upload from the same store
    return env


def driver_restarts(job: FineTuneJob) -> int:
    """How many times the job's driver was resubmitted: its Ray Job is `<job id>-r<n>` after the n-th."""
    suffix = (job.submission_id or "").removeprefix(job.id)
    return int(suffix[2:]) if suffix.startswith("-r") and suffix[2:].isdigit() else 0


class FineTuneSupervisor:
    """The loop that runs API fine-tuning jobs as Ray Jobs."""

    def __init__(self, config: ServeAppConfig) -> None:
        self.config = config
        url = config.settings().resolved_database_url
        self.jobs = FineTuneStore(url)
        self.files = FileStore(url)
        self.meter = UsageMeter(url)
        self.interval_s = config.fine_tuning.poll_interval_s
        self._client = None
        self._wake = asyncio.Event()
        self._errors: dict[str, str] = {}  # job id -> the last error recorded on it

    def wake(self) -> None:
        """Look at the jobs now (one was just created or cancelled)."""
        self._wake.set()

    def client(self):
        """The Jobs API client, created on first use (the dashboard may start after the ingress)."""
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(jobs_api_url(self.config))
        return self._client

    async def run(self) -> None:
        """Supervise forever; a failing pass is logged and the next one runs."""
        while True:
            try:
                await asyncio.to_thread(self.supervise_once)
            except Exception:  # the Jobs API or the database may be briefly unreachable
                logger.exception("fine-tuning supervision pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    def supervise_once(self) -> None:
        """One pass over every unfinished or unsettled job; submits the oldest waiting ones while there is room.

        Jobs are isolated: one job's error is logged and recorded on that job, and the pass goes on.
        """
        in_flight = self.jobs.in_flight()
        running = sum(1 for j in in_flight if j.submission_id is not None and j.status in (QUEUED, RUNNING))
        for job in in_flight:  # oldest first: a fair queue across tenants
            try:
                if job.status == VALIDATING and job.submission_id is None:
                    policy = self.config.fine_tuning.policy_for(job.tenant)
                    if admit_job(self.jobs, self.files, job, policy) == Admission.QUEUED:
                        job = self.jobs.get(None, job.id)  # submitted in this pass if there is room
                if job.status == QUEUED and job.submission_id is None and not job.cancel_requested:
                    if running < self.config.fine_tuning.max_running_jobs:
                        self.submit(job)
                        running += 1
                elif job.submission_id is not None:
                    self.follow(job)
            except Exception as exc:  # the next pass tries this job again; the others go on now
                self._record_error(job, exc)
            else:
                self._errors.pop(job.id, None)

    def _record_error(self, job: FineTuneJob, exc: Exception) -> None:
        """Log a job's supervision error, and add it to the job's events when it is a new one."""
        message = f"{type(exc).__name__}: {exc}"[:LOG_TAIL_CHARS]
        logger.exception("supervising fine-tuning job %s failed", job.id)
        if self._errors.get(job.id) == message:  # the same error every pass would flood the events
            return
        self._errors[job.id] = message
        try:
            self.jobs.add_event(job.id, f"The platform could not follow this job (retrying): {message}", level="warn")
        except Exception:  # the database itself is down; the log has it
            logger.exception("recording the error of fine-tuning job %s failed", job.id)

    def submit(self, job: FineTuneJob) -> None:
        """Start the job's driver as a Ray Job named after the job."""
        try:
            self._submit_ray_job(job, job.id)
        except NoJobsApiError as exc:  # a deployment without Jobs API can never run it: say so on the job
            self.jobs.fail(job.id, "cluster_unavailable", str(exc))
            self.jobs.add_event(job.id, str(exc), level="error")
            return
        self.jobs.set_submission(job.id, job.id)
        self.jobs.add_event(job.id, f"Submitted to the cluster as Ray Job {job.id}")

    def _submit_ray_job(self, job: FineTuneJob, submission_id: str) -> None:
        """Submit the driver under `submission_id`; one that exists already (another replica's) is no error."""
        python = self.config.fine_tuning.python or sys.executable
        policy = self.config.fine_tuning.policy_for(job.tenant)
        entrypoint = (
            f"{shlex.quote(python)} -m reelforge.platform.fine_tuning.driver {shlex.quote(job.id)} "
            f"--max-steps {policy.max_steps}"
        )
        try:
            self.client().submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env={"env_vars": driver_env(self.config)},
                entrypoint_resources=dict(self.config.fine_tuning.driver_resources) or None,
                metadata={"tenant": job.tenant, "fine_tuning_job": job.id},
            )
        except RuntimeError as exc:
            if "already exists" not in str(exc):  # another ingress replica submitted it first
                raise

    def _resubmit(self, job: FineTuneJob, ended: str) -> bool:
        """Start a new driver for a job whose driver died unsettled; False when its restarts are spent."""
        restarts = driver_restarts(job)
        limit = self.config.fine_tuning.max_driver_restarts
        if restarts >= limit:
            return False
        submission_id = f"{job.id}-r{restarts + 1}"
        self._submit_ray_job(job, submission_id)
        self.jobs.set_submission(job.id, submission_id)
        self.jobs.add_event(
            job.id,
            f"The training driver stopped ({ended}) before finishing; resubmitted as Ray Job {submission_id} "
            f"to resume from the last checkpoint (restart {restarts + 1} of {limit})",
            level="warn",
        )
        return True

    def _ray_job(self, job: FineTuneJob):
        """The Ray Job's info, or None when the cluster no longer knows it (it was restarted)."""
        try:
            return self.client().get_job_info(job.submission_id)
        except RuntimeError as exc:
            if "status code 404" not in str(exc) and "does not exist" not in str(exc):
                raise
            return None

    def follow(self, job: FineTuneJob) -> None:
        """Settle a submitted job against its Ray Job's state."""
        client = self.client()
        info = self._ray_job(job)
        if info is None:
            message = f"Ray Job {job.submission_id} is no longer known to the cluster (was it restarted?)"
            if job.status not in TERMINAL and self._resubmit(job, message):
                return  # a restarted head: the new driver resumes from the checkpoint on shared storage
            if self.jobs.fail(job.id, "training_failed", message):
                self.jobs.add_event(job.id, message, level="error")
            self.jobs.mark_metered(job.id)  # nothing left to stop or measure
            return
        if job.status == CANCELLED:
            if str(info.status.value) not in RAY_TERMINAL:
                client.stop_job(job.submission_id)  # SIGTERM to the driver; its Train workers go with it
                return  # settled on a later pass, once Ray says it stopped
            self._clean_up_cancelled(job)
            self._settle(job, info)
            return
        status = str(info.status.value)
        if status not in RAY_TERMINAL:
            self._enforce_timeout(job)
            return
        if job.status in (VALIDATING, QUEUED, RUNNING):
            # The driver settles its own job; a Ray Job that ended with the row still open died.
            current = self.jobs.get(None, job.id)
            if current.status not in TERMINAL:
                ended = f"{status}: {info.message or 'no message'}"
                if self._resubmit(current, ended):
                    return  # followed through its new Ray Job from the next pass
                tail = client.get_job_logs(job.submission_id)[-LOG_TAIL_CHARS:]
                message = f"the training driver ended ({ended}) without finishing; log tail: {tail}"
                self.jobs.fail(job.id, "training_failed", message)
                self.jobs.add_event(job.id, message, level="error")
            job = self.jobs.get(None, job.id)
        self._settle(job, info)

    def _enforce_timeout(self, job: FineTuneJob) -> None:
        """Stop and fail a job that has run longer than `fine_tuning.job_timeout_s`."""
        limit = self.config.fine_tuning.job_timeout_s
        if job.status != RUNNING or job.started_at is None or time.time() - job.started_at <= limit:
            return
        message = f"the job ran longer than its time limit of {limit:g} s (fine_tuning.job_timeout_s) and was stopped"
        if self.jobs.fail(job.id, "timeout", message):
            self.jobs.add_event(job.id, message, level="error")
        self.client().stop_job(job.submission_id)  # settled once Ray says it stopped

    def _settle(self, job: FineTuneJob, info) -> None:
        """Record the finished job's usage once and stop following it."""
        job = self.jobs.get(None, job.id)
        ended = (info.end_time or 0) / 1000 or job.finished_at or time.time()
        seconds = max(0.0, ended - job.started_at) * job.workers if job.started_at else 0.0
        adapter = job.registered if job.status != CANCELLED else None
        self.meter.record(
            usage_record(job.tenant, TRAINING, job.id, job.model, adapter, job.device or "cpu", seconds, 0, at=ended)
        )
        self.jobs.mark_metered(job.id)
        logger.info("fine-tuning job %s settled: %s, %.1f device-seconds", job.id, job.status, seconds)

    def _clean_up_cancelled(self, job: FineTuneJob) -> None:
        """Remove what a cancelled driver may have left: registry versions, an open MLflow run.

        Versions are found through the job's runs, not only through `job.registered`: a driver
        stopped between creating a version and recording it leaves a version the row does not name.
        Removing is idempotent, so a version the driver already removed is no error.
        """
        settings = self.config.settings()
        client = tracking_client(settings)
        experiment = tenant_experiment_id(client, settings, job.tenant, create=False)
        runs = (
            client.search_runs([experiment], filter_string=f"tags.`{TAG_PREFIX}job_id` = '{filter_literal(job.id)}'")
            if experiment is not None
            else []
        )
        versions = {tuple(job.registered.rpartition("/")[::2])} if job.registered else set()
        for run in runs:
            found = client.search_model_versions(filter_string=f"run_id = '{filter_literal(run.info.run_id)}'")
            versions.update((v.name, str(v.version)) for v in found)
        for name, version in sorted(versions):
            if self._delete_version(client, name, version):
                self.jobs.add_event(job.id, f"Removed {name}/{version}, registered just before the cancel took effect")
        for run in runs:
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")

    @staticmethod
    def _delete_version(client, name: str, version: str) -> bool:
        """Delete one registry version; False if it was already gone."""
        from mlflow.exceptions import MlflowException

        try:
            client.delete_model_version(name, version)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return False
        return True
