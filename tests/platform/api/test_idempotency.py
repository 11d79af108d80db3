"""`Idempotency-Key` on creates: the same key and request replay the first response and record
nothing new; the same key with another request is a 409; keys are the tenant's own; a key a dead
server left held is taken over, and the create finds what that server recorded."""

from __future__ import annotations

import hashlib
import time

import pytest
from sqlalchemy import update

from reelforge.models.tiny.footage import write_footage
from reelforge.platform.api.idempotency import fingerprint
from reelforge.platform.stores.idempotency_keys import PENDING_TAKEOVER_S, IdempotencyStore, IdempotentRequest
from tests.harness import PROMPT, assert_openai_error, settled_file, zip_folder


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


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
    IdempotencyStore(api.services.videos.settings.resolved_database_url).begin(
        "acme", "videos.create", "in-flight", "some-other-fingerprint"
    )
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
            .values(status_code=None, response=None, created_at=time.time() - PENDING_TAKEOVER_S - 1)
        )
    retried = api.acme.post("/v1/videos", json=body, headers=key("server-died"))
    assert retried.status_code == 200 and retried.json()["id"] == first["id"]
    assert len(api.acme.get("/v1/videos").json()["data"]) == 1
    replayed = api.acme.post("/v1/videos", json=body, headers=key("server-died"))
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json()["id"] == first["id"]


def test_an_upload_key_held_by_a_dead_server_is_taken_over(api, tmp_path):
    """The key is held only while the upload is stored (validation runs after the response), so the
    usual takeover window applies, and the retried upload is kept and validated."""
    write_footage(tmp_path / "footage", count=1, seed=2)
    archive = zip_folder(tmp_path / "footage")
    store = IdempotencyStore(api.services.videos.settings.resolved_database_url)
    same_request = fingerprint(hashlib.sha256(archive).hexdigest(), "f.zip", "fine-tune", "{}")
    store.begin("acme", "files.create", "dead-upload", same_request)

    def retry():
        return api.acme.post(
            "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", archive)}, headers=key("dead-upload")
        )

    assert "still in progress" in assert_openai_error(retry(), 409, "idempotency_key_conflict")["message"]
    with store._session.begin() as session:  # as if the server holding it died a while ago
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.key == "dead-upload")
            .values(created_at=time.time() - PENDING_TAKEOVER_S - 1)
        )
    retried = retry()
    assert retried.status_code == 200 and retried.json()["status"] == "uploaded", retried.text
    assert settled_file(api.acme, f"/v1/files/{retried.json()['id']}")["status"] == "processed"
    assert [f["id"] for f in api.acme.get("/v1/files").json()["data"]] == [retried.json()["id"]]


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
