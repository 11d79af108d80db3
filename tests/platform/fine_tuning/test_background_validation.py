"""Background upload validation: the lease on each file, the takeover of a validation whose server
died, and the admission of a fine-tuning job created on a file that is still being validated.

Real stores on SQLite under a temporary home, and real footage; no Ray cluster, so validations run
in the validator's own thread (the Ray task path runs in test_upload_validation.py).
"""

from __future__ import annotations

import time

import pytest
from ray._common.test_utils import wait_for_condition
from sqlalchemy import update

from reelforge.models.tiny.footage import write_footage
from reelforge.platform.config import TrainingPolicy
from reelforge.platform.fine_tuning.job_admission import Admission, admit_job
from reelforge.platform.fine_tuning.upload_validation import UploadValidator
from reelforge.platform.stores.files import ERROR, PROCESSED, UPLOADED, FileStore, UploadedFile
from reelforge.platform.stores.fine_tune_jobs import FAILED, QUEUED, VALIDATING, FineTuneStore
from tests.harness import ApiClients, zip_folder

EMPTY_REPORT = {"accepted": [], "rejected": []}


@pytest.fixture
def footage_zip(tmp_path) -> bytes:
    write_footage(tmp_path / "footage", count=2, seed=11)
    return zip_folder(tmp_path / "footage")


def _stored_upload(api: ApiClients, archive: bytes, lease_s: float, declaration: dict | None = None) -> str:
    """An upload stored and recorded as `uploaded` by a server that then died (nothing validates it)."""
    file_id = "file-" + "a" * 24
    with api.services.files.blobs.open_upload("acme", file_id) as sink:
        sink.write(archive)
    api.services.files.blobs.commit_upload("acme", file_id)
    api.services.files.files.create(file_id, "acme", "look.zip", "fine-tune", len(archive), "ab", declaration, lease_s)
    return file_id


def _expire_lease(files: FileStore, file_id: str) -> None:
    with files._session.begin() as session:
        session.execute(
            update(UploadedFile).where(UploadedFile.id == file_id).values(validation_lease_until=time.time() - 1)
        )


def test_a_validation_whose_server_died_is_taken_over_once_its_lease_runs_out(tmp_path, footage_zip):
    api = ApiClients(tmp_path / "home")
    files = api.services.files.files
    declaration = {"uploader": "rf-acme-...abcd", "license": "company-owned", "consent": "staff releases"}
    file_id = _stored_upload(api, footage_zip, lease_s=3600, declaration=declaration)
    validator = UploadValidator(api.services.files)
    assert validator.sweep_once() == 0  # its first validator may still be at work: the lease is live
    _expire_lease(files, file_id)
    other_replica = UploadValidator(api.services.files)
    assert files.claim_abandoned_validations(3600, 3) != []  # a replica wins the claim ...
    assert other_replica.sweep_once() == 0  # ... and no other replica takes the same file
    _expire_lease(files, file_id)
    assert validator.sweep_once() == 1
    wait_for_condition(lambda: files.get("acme", file_id).status != UPLOADED, timeout=60)
    found = files.get("acme", file_id)
    assert found.status == PROCESSED and found.validation_attempts == 3, found.status_details
    # The rights declared with the upload reach the report, though another server validated it.
    assert {(v["license"], v["consent"], v["uploader"]) for v in found.report["accepted"]} == {
        ("company-owned", "staff releases", "rf-acme-...abcd")
    }


def test_a_file_whose_validators_keep_dying_is_error_after_the_attempts(tmp_path, footage_zip):
    api = ApiClients(tmp_path / "home", fine_tuning={"validation_max_attempts": 2})
    files = api.services.files.files
    file_id = _stored_upload(api, footage_zip, lease_s=-1)  # attempt 1, its server gone
    assert [f.id for f in files.claim_abandoned_validations(-1, 2)] == [file_id]  # attempt 2, gone too
    assert files.claim_abandoned_validations(3600, 2) == []
    found = files.get("acme", file_id)
    assert found.status == ERROR and "started 2 times and never finished" in found.status_details


def test_the_first_outcome_stands(tmp_path, footage_zip):
    api = ApiClients(tmp_path / "home")
    files = api.services.files.files
    file_id = _stored_upload(api, footage_zip, lease_s=3600)
    assert files.finish_validation(file_id, True, "2 videos accepted", EMPTY_REPORT)
    assert not files.finish_validation(file_id, False, "a late validator's timeout", EMPTY_REPORT)
    assert files.get("acme", file_id).status == PROCESSED


def test_a_job_on_a_file_being_validated_waits_then_is_queued(tmp_path, footage_zip):
    api = ApiClients(tmp_path / "home")
    file_id = _stored_upload(api, footage_zip, lease_s=3600)
    created = api.acme.post("/v1/fine_tuning/jobs", json={"model": "reelforge-tiny", "training_file": file_id})
    assert created.status_code == 200 and created.json()["status"] == VALIDATING, created.text
    job_id = created.json()["id"]
    events = api.acme.get(f"/v1/fine_tuning/jobs/{job_id}/events").json()["data"]
    assert events[0]["message"] == f"Waiting for the validation of {file_id}"

    jobs = FineTuneStore(api.services.files.settings.resolved_database_url)
    files = api.services.files.files
    assert admit_job(jobs, files, jobs.get(None, job_id), TrainingPolicy()) == Admission.WAITING
    api.services.files.validate("acme", file_id)
    assert admit_job(jobs, files, jobs.get(None, job_id), TrainingPolicy()) == Admission.QUEUED
    assert jobs.get(None, job_id).status == QUEUED
    events = api.acme.get(f"/v1/fine_tuning/jobs/{job_id}/events").json()["data"]
    assert events[0]["message"].startswith(f"Validated training_file {file_id}: 2 videos accepted")
    # A second admission (another replica's pass) changes nothing.
    assert admit_job(jobs, files, jobs.get(None, job_id), TrainingPolicy()) == Admission.QUEUED


@pytest.mark.parametrize(
    ("settle", "require_rights", "needle"),
    [
        (
            lambda files, file_id: files.finish_validation(file_id, False, "0 videos accepted", EMPTY_REPORT),
            False,
            "holds no usable footage: 0 videos accepted",
        ),
        (lambda files, file_id: files.delete("acme", file_id), False, "was deleted before it was validated"),
        (None, True, "2 without: clip_0000.mp4, clip_0001.mp4"),
    ],
    ids=["error", "deleted", "rights-missing"],
)
def test_a_job_whose_file_turns_out_unusable_fails_naming_it(tmp_path, footage_zip, settle, require_rights, needle):
    api = ApiClients(tmp_path / "home")
    file_id = _stored_upload(api, footage_zip, lease_s=3600)
    job_id = api.acme.post("/v1/fine_tuning/jobs", json={"model": "reelforge-tiny", "training_file": file_id}).json()[
        "id"
    ]
    files = api.services.files.files
    if settle is None:
        api.services.files.validate("acme", file_id)  # usable, but its videos declare no rights
    else:
        settle(files, file_id)
    jobs = FineTuneStore(api.services.files.settings.resolved_database_url)
    assert (
        admit_job(jobs, files, jobs.get(None, job_id), TrainingPolicy(require_rights=require_rights))
        == Admission.FAILED
    )
    job = jobs.get(None, job_id)
    assert (job.status, job.error_code, job.error_param) == (FAILED, "invalid_training_file", "training_file")
    assert needle in job.error_message
