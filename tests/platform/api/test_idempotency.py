"""`Idempotency-Key` on creates: the same key and request replay the first response and record
nothing new; the same key with another request is a 409; keys are the tenant's own; a key a dead
server left held (its hold no longer renewed) is taken over, and the create finds what that server
recorded; a slow request that keeps renewing keeps its key."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from types import SimpleNamespace

import pytest
from pydantic import BaseModel
from sqlalchemy import select, update

from reelforge.models.tiny.footage import write_footage
from reelforge.platform.api.idempotency import fingerprint, run_once
from reelforge.platform.stores.idempotency_keys import (
    IdempotencyConflictError,
    IdempotencyStore,
    IdempotentRequest,
    KeyHold,
)
from tests.harness import PROMPT, assert_openai_error, settled_file, zip_folder


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _age(store: IdempotencyStore, key_value: str, seconds: float) -> None:
    """As if the key's holder took it (and last renewed it) `seconds` ago, then went silent."""
    with store._session.begin() as session:
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.key == key_value)
            .values(created_at=time.time() - seconds, renewed_at=None)
        )


def test_a_retried_video_create_returns_the_first_video(api):
    body = {"prompt": PROMPT, "seconds": "1", "seed": 4}
    first = api.acme.post("/v1/videos", json=body, headers=key("create-1"))
    again = api.acme.post("/v1/videos", json=body, headers=key("create-1"))
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert [v["id"] for v in api.acme.get("/v1/videos").json()["data"]] == [first.json()["id"]]
    assert api.wakes == 1  # the dispatcher heard of one job
    # The same request as a form is the same request (clients send either).
    as_form = api.acme.post("/v1/videos", data={"prompt": PROMPT, "seconds": "1", "seed": "4"}, headers=key("create-1"))
    assert as_form.json()["id"] == first.json()["id"]


def test_a_key_reused_for_another_request_is_409(api):
    api.acme.post("/v1/videos", json={"prompt": PROMPT}, headers=key("reused"))
    error = assert_openai_error(
        api.acme.post("/v1/videos", json={"prompt": PROMPT, "seed": 9}, headers=key("reused")),
        409,
        "idempotency_key_conflict",
    )
    assert error["param"] == "Idempotency-Key" and "different request" in error["message"]
    assert len(api.acme.get("/v1/videos").json()["data"]) == 1


def test_keys_are_per_tenant_and_a_failed_request_frees_its_key(api):
    mine = api.acme.post("/v1/videos", json={"prompt": PROMPT}, headers=key("shared-name")).json()
    theirs = api.globex.post("/v1/videos", json={"prompt": PROMPT}, headers=key("shared-name")).json()
    assert mine["id"] != theirs["id"]
    refused = api.acme.post("/v1/videos", json={"prompt": PROMPT, "seconds": "7"}, headers=key("retry-me"))
    assert_openai_error(refused, 400)
    assert (
        api.acme.post("/v1/videos", json={"prompt": PROMPT, "seconds": "7"}, headers=key("retry-me")).status_code == 400
    )


def test_a_key_whose_first_request_still_runs_is_409(api):
    store = IdempotencyStore(api.services.videos.settings.resolved_database_url)
    store.begin("acme", "videos.create", "in-flight", "some-other-fingerprint", lease_s=10)
    response = api.acme.post("/v1/videos", json={"prompt": PROMPT}, headers=key("in-flight"))
    assert_openai_error(response, 409, "idempotency_key_conflict")


def test_a_key_left_held_by_a_dead_server_is_taken_over_without_a_second_video(api):
    body = {"prompt": PROMPT, "seed": 5}
    first = api.acme.post("/v1/videos", json=body, headers=key("server-died")).json()
    # As if the server died after recording the job but before storing the response for replays.
    store = IdempotencyStore(api.services.videos.settings.resolved_database_url)
    with store._session.begin() as session:
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.key == "server-died")
            .values(status_code=None, response=None)
        )
    assert_openai_error(api.acme.post("/v1/videos", json=body, headers=key("server-died")), 409)  # held, not silent
    _age(store, "server-died", api.services.config.idempotency_lease_s + 1)  # its holder has gone silent
    retried = api.acme.post("/v1/videos", json=body, headers=key("server-died"))
    assert retried.status_code == 200 and retried.json()["id"] == first["id"]
    assert len(api.acme.get("/v1/videos").json()["data"]) == 1
    replayed = api.acme.post("/v1/videos", json=body, headers=key("server-died"))
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json()["id"] == first["id"]


def test_an_upload_key_held_by_a_dead_server_is_taken_over(api, tmp_path):
    """The key is held only while the upload is recorded (validation runs after the response), so the
    usual lease applies, and the retried upload is kept and validated."""
    write_footage(tmp_path / "footage", count=1, seed=2)
    archive = zip_folder(tmp_path / "footage")
    store = IdempotencyStore(api.services.videos.settings.resolved_database_url)
    same_request = fingerprint(hashlib.sha256(archive).hexdigest(), "f.zip", "fine-tune", "{}")
    store.begin("acme", "files.create", "dead-upload", same_request, lease_s=10)

    def retry():
        return api.acme.post(
            "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", archive)}, headers=key("dead-upload")
        )

    assert "still in progress" in assert_openai_error(retry(), 409, "idempotency_key_conflict")["message"]
    _age(store, "dead-upload", api.services.config.idempotency_lease_s + 1)
    retried = retry()
    assert retried.status_code == 200 and retried.json()["status"] == "uploaded", retried.text
    assert settled_file(api.acme, f"/v1/files/{retried.json()['id']}")["status"] == "processed"
    assert [f["id"] for f in api.acme.get("/v1/files").json()["data"]] == [retried.json()["id"]]


def test_a_renewed_hold_is_kept_past_its_lease_and_a_taken_over_one_changes_nothing(tmp_path):
    store = IdempotencyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    hold = store.begin("acme", "videos.create", "slow", "same", lease_s=10)
    assert isinstance(hold, KeyHold)
    # As if taken a minute ago, far longer than the lease, but renewed just now: still running.
    hold = dataclasses.replace(hold, since=hold.since - 60)
    with store._session.begin() as session:
        session.execute(update(IdempotentRequest).values(created_at=hold.since))
    assert store.renew(hold) is True
    with pytest.raises(IdempotencyConflictError, match="still in progress"):
        store.begin("acme", "videos.create", "slow", "same", lease_s=10)
    with store._session.begin() as session:  # the holder goes silent
        session.execute(update(IdempotentRequest).values(renewed_at=time.time() - 11))
    retry = store.begin("acme", "videos.create", "slow", "same", lease_s=10)
    assert isinstance(retry, KeyHold) and retry.since > hold.since  # taken over
    assert store.renew(hold) is False  # the first holder learns it lost the key ...
    store.finish(hold, 200, {"id": "from-the-first"})
    store.release(hold)
    assert _row(store, "slow").status_code is None  # ... and neither finishes nor frees it
    store.finish(retry, 200, {"id": "from-the-retry"})
    assert store.begin("acme", "videos.create", "slow", "same", lease_s=10).response == {"id": "from-the-retry"}


def _row(store: IdempotencyStore, key_value: str) -> IdempotentRequest:
    with store._session() as session:
        return session.scalar(select(IdempotentRequest).where(IdempotentRequest.key == key_value))


class _Made(BaseModel):
    id: str


def test_run_once_renews_its_hold_while_the_request_runs(tmp_path):
    """Isolates run_once's renewal loop: a real store on SQLite, the services and caller as plain
    namespaces, and a create that finishes only once its hold has been renewed."""
    store = IdempotencyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    services = SimpleNamespace(idempotency=store, config=SimpleNamespace(idempotency_lease_s=0.3))
    caller = SimpleNamespace(tenant=SimpleNamespace(name="acme"))

    async def slow_create() -> _Made:
        deadline = time.monotonic() + 10
        while _row(store, "slow").renewed_at is None:  # runs until its hold has been renewed once
            assert time.monotonic() < deadline, "the hold was never renewed"
            await asyncio.sleep(0.02)
        return _Made(id="made")

    assert asyncio.run(run_once(services, caller, "videos.create", "slow", "print", slow_create)).id == "made"
    row = _row(store, "slow")
    assert row.status_code == 200 and row.response == {"id": "made"}


@pytest.mark.parametrize("value", ["", "x" * 256, "with space", "ключ"])
def test_malformed_keys_are_400(api, value):
    response = api.acme.post("/v1/videos", json={"prompt": PROMPT}, headers={"Idempotency-Key": value.encode()})
    assert assert_openai_error(response, 400)["param"] == "Idempotency-Key"


def test_a_retried_upload_and_fine_tune_return_the_first_objects(api, tmp_path):
    write_footage(tmp_path / "footage", count=2, seed=8)
    archive = zip_folder(tmp_path / "footage")

    def upload():
        return api.acme.post(
            "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", archive)}, headers=key("upload-1")
        )

    first, again = upload(), upload()
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert [f["id"] for f in api.acme.get("/v1/files").json()["data"]] == [first.json()["id"]]

    job = {"model": "reelforge-tiny", "training_file": first.json()["id"], "seed": 1}
    created = api.acme.post("/v1/fine_tuning/jobs", json=job, headers=key("job-1"))
    repeated = api.acme.post("/v1/fine_tuning/jobs", json=job, headers=key("job-1"))
    assert created.status_code == 200, created.text
    assert repeated.json()["id"] == created.json()["id"]
    assert len(api.acme.get("/v1/fine_tuning/jobs").json()["data"]) == 1
