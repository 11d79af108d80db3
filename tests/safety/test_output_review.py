"""Generated videos that show a face: held for an operator's decision or released, by tenant policy.

The API through FastAPI's TestClient and a real generation worker (reelforge-tiny, SQLite, local
blobs) on the same home; the operator decides with the real `reelforge review` CLI. The one stand-in:
reelforge-tiny cannot draw a face, so `PortraitWorker.sample` returns a pan over a real portrait
instead of the model's frames. Everything after sampling (the face scan, labels, watermark, C2PA,
storage, metering, audit, the hold) is the worker's own code.
"""

from __future__ import annotations

import json

import pytest

from reelforge.platform.config import GeneratorConfig
from reelforge.platform.serving.generation_worker import GenerationWorker
from reelforge.platform.stores.audit_log import VIDEO_APPROVED, VIDEO_HELD, VIDEO_REJECTED, AuditLog
from reelforge.platform.stores.video_jobs import VideoJobStore
from reelforge.safety.face_detection import FaceScan
from reelforge.safety.output_review import HELD, OutputReviewPolicy, review_outcome
from tests.faces import portrait_video
from tests.harness import ApiClients, assert_openai_error, run_cli

DEPLOYMENT = "generator-reelforge-tiny"
PROMPT = "a red circle moving left on a white background"


class PortraitWorker(GenerationWorker):
    """A generation worker whose sampler returns a real portrait (at the job's size and length)."""

    def sample(self, job, lease):
        return portrait_video(size=job.width, num_frames=job.num_frames)


@pytest.fixture
def platform(tmp_path, monkeypatch):
    """acme's videos with faces are held (the default policy); globex's are released."""
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path / "home"))
    api = ApiClients(tmp_path / "home", review={"tenants": {"globex": {"faces": "release"}}})
    config = api.services.config
    return api, PortraitWorker(config, GeneratorConfig()), GenerationWorker(config, GeneratorConfig())


def _generate(api: ApiClients, worker: GenerationWorker, client) -> str:
    """Create a 64x64 video through the API and run it on `worker`; its id."""
    created = client.post("/v1/videos", json={"prompt": PROMPT, "size": "64x64", "seconds": "1", "steps": 2})
    assert created.status_code == 200, created.text
    (claim,) = VideoJobStore(api.services.config.settings().resolved_database_url).claim("d", DEPLOYMENT, 1, 60)
    assert worker.run(claim.id, claim.fence, None, "replica-1")["status"] == "completed"
    return created.json()["id"]


def test_held_video_waits_for_an_operator_who_approves_or_rejects_it(platform, monkeypatch, capsys):
    api, portrait, _ = platform
    approved, rejected = _generate(api, portrait, api.acme), _generate(api, portrait, api.acme)

    shown = api.acme.get(f"/v1/videos/{approved}").json()
    assert (shown["status"], shown["progress"], shown["review"]["status"]) == ("in_progress", 100, "held")
    assert shown["review"]["note"].startswith("held for review: faces in ") and shown["expires_at"] is None
    assert_openai_error(api.acme.get(f"/v1/videos/{approved}/content"), 409, code="video_not_ready")

    code, out, err = run_cli(["review", "list", "--json"], monkeypatch, capsys)
    assert code == 0, err
    assert {(row["id"], row["tenant"]) for row in json.loads(out)} == {(approved, "acme"), (rejected, "acme")}

    code, _, err = run_cli(
        ["review", "approve", approved, "--note", "the tenant's own ambassador"], monkeypatch, capsys
    )
    assert code == 0 and f"approved {approved} of tenant acme" in err
    done = api.acme.get(f"/v1/videos/{approved}").json()
    assert done["status"] == "completed" and done["review"]["status"] == "approved" and done["expires_at"]
    content = api.acme.get(f"/v1/videos/{approved}/content")
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"

    code, _, err = run_cli(["review", "reject", rejected, "--reason", "a real person, no release"], monkeypatch, capsys)
    assert code == 0, err
    failed = api.acme.get(f"/v1/videos/{rejected}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "rejected_in_review", "message": "a real person, no release"}
    assert_openai_error(api.acme.get(f"/v1/videos/{rejected}/content"), 409, code="video_not_ready")
    assert VideoJobStore(api.services.config.settings().resolved_database_url).files_to_remove()[0].id == rejected

    # Decided once: a second decision, a rejection without a reason and an unknown id are exit code 2.
    for args in (["approve", approved], ["reject", rejected, "--reason", "again"], ["approve", "video_nope"]):
        code, _, err = run_cli(["review", *args], monkeypatch, capsys)
        assert code == 2, (args, err)
    assert "was already approved" in run_cli(["review", "approve", approved], monkeypatch, capsys)[2]

    events = AuditLog(api.services.config.settings().resolved_database_url).events("acme", limit=100)[0]
    actions = [(e.action, e.subject) for e in events if e.action in (VIDEO_HELD, VIDEO_APPROVED, VIDEO_REJECTED)]
    assert actions == [
        (VIDEO_HELD, approved),
        (VIDEO_HELD, rejected),
        (VIDEO_APPROVED, approved),
        (VIDEO_REJECTED, rejected),
    ]
    decided = {e.subject: e for e in events if e.action in (VIDEO_APPROVED, VIDEO_REJECTED)}
    assert (
        decided[approved].actor.startswith("cli:") and decided[rejected].details["note"] == "a real person, no release"
    )


def test_face_free_videos_and_release_policy_tenants_are_served_at_once(platform):
    api, portrait, plain = platform
    shapes = _generate(api, plain, api.acme)  # the tiny model's own frames: coloured shapes, no face
    released = _generate(api, portrait, api.globex)
    for client, video_id in ((api.acme, shapes), (api.globex, released)):
        shown = client.get(f"/v1/videos/{video_id}").json()
        assert shown["status"] == "completed" and shown["review"] is None, shown
        assert client.get(f"/v1/videos/{video_id}/content").status_code == 200
    # The scan is on record either way: the released video's audit says where the faces were.
    completed = {
        e.subject: e.details["faces"]
        for tenant in ("acme", "globex")
        for e in AuditLog(api.services.config.settings().resolved_database_url).events(tenant, limit=100)[0]
        if e.action == "video.completed"
    }
    assert completed[shapes]["face_instants_s"] == [] and len(completed[released]["face_instants_s"]) >= 4


def test_the_outcome_is_the_policy_applied_to_the_scan():
    seen, unseen = FaceScan(8, (0.0, 0.5)), FaceScan(8)
    assert review_outcome(seen, OutputReviewPolicy()) == HELD  # holding is the default
    assert review_outcome(seen, OutputReviewPolicy(faces="release")) is None
    assert review_outcome(unseen, OutputReviewPolicy()) is None
    assert review_outcome(FaceScan(8, (0.5,)), OutputReviewPolicy()) is None  # one instant of eight: not a person
