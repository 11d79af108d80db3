"""Training footage that shows faces needs the consent of the people shown: the inventory finds the
faces, `reelforge ingest` and the fine-tuning API refuse such footage without consent, naming the files.

Real MP4s (a pan over a real portrait, and shapes-world clips), real stores on SQLite; no Ray: the
API validates uploads in its validator's own thread, and ingestion stops before it would start Ray Data.
"""

from __future__ import annotations

import json

import pytest

from reelforge.errors import ConsentRequiredError
from reelforge.jobs.footage_inventory import inventory_folder
from reelforge.jobs.ingest import IngestConfig, footage_requirements, ingest
from reelforge.models.loading import describe_model
from reelforge.models.tiny.footage import write_footage
from reelforge.safety.face_consent import require_face_consent, videos_needing_consent
from tests.faces import write_portrait_mp4
from tests.harness import ApiClients, assert_openai_error, settled_file, zip_folder

TINY_NEEDS = footage_requirements(describe_model("reelforge-tiny").defaults)
CAPTION = "a woman in a space suit in front of a flag"


@pytest.fixture
def footage(tmp_path):
    """Two shapes-world clips and one portrait video, each with its caption sidecar."""
    folder = tmp_path / "footage"
    write_footage(folder, count=2, seed=3)
    write_portrait_mp4(folder / "portrait.mp4", size=96, num_frames=24)
    (folder / "portrait.txt").write_text(CAPTION)
    return folder


def test_the_inventory_records_where_each_video_shows_faces(footage):
    inventory = inventory_folder(footage, TINY_NEEDS)
    faces = {a.file: a.faces for a in inventory.accepted}
    assert set(faces) == {"clip_0000.mp4", "clip_0001.mp4", "portrait.mp4"}, inventory.report()["rejected"]
    assert len(faces["portrait.mp4"]["face_instants_s"]) >= 6 and faces["portrait.mp4"]["instants_scanned"] == 12
    assert faces["clip_0000.mp4"]["face_instants_s"] == faces["clip_0001.mp4"]["face_instants_s"] == []


def test_the_refusal_names_the_files_and_counts_the_rest():
    faces = {"instants_scanned": 12, "face_instants_s": [0.0, 1.0]}
    videos = [{"file": f"v{i}.mp4", "faces": faces} for i in range(7)]
    glimpse = {"instants_scanned": 12, "face_instants_s": [3.0]}  # one instant: a cascade's false alarm
    videos += [{"file": "ok.mp4", "faces": faces, "consent": "release 4"}, {"file": "plain.mp4", "faces": None}]
    videos += [{"file": "glimpse.mp4", "faces": glimpse}]
    assert videos_needing_consent(videos) == [f"v{i}.mp4" for i in range(7)]
    with pytest.raises(ConsentRequiredError) as refused:
        require_face_consent(videos, "upload.zip", param="training_file")
    assert "upload.zip has 7 video(s) showing people's faces" in refused.value.message
    assert "v0.mp4, v1.mp4, v2.mp4, v3.mp4, v4.mp4 and 2 more" in refused.value.message
    assert refused.value.param == "training_file" and refused.value.exit_code == 2
    require_face_consent(videos[7:], "upload.zip")  # consented or face-free: nothing to refuse


def test_ingest_refuses_faces_without_consent_and_takes_a_declared_one(footage, tmp_path):
    config = IngestConfig("acme", "reelforge-tiny", footage, tmp_path / "ingested")
    with pytest.raises(ConsentRequiredError, match=r"1 video\(s\) showing people's faces .*: portrait\.mp4\."):
        ingest(config)
    assert not (tmp_path / "ingested" / "shards").exists()  # refused before any encoding
    rows = [{"file": "portrait.mp4", "text": CAPTION, "consent": "model release 2026-11"}]
    (footage / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inventory = inventory_folder(footage, TINY_NEEDS)
    require_face_consent([a.__dict__ for a in inventory.accepted], "footage")  # the consent is read per file


@pytest.mark.slow
def test_the_fine_tuning_api_refuses_an_upload_with_faces_until_consent_is_recorded(footage, tmp_path):
    # globex's operator does not ask for consent (the policy is per tenant); acme's default does.
    api = ApiClients(tmp_path / "home", fine_tuning={"tenants": {"globex": {"faces_need_consent": False}}})

    def upload(client, **fields) -> str:
        sent = client.post(
            "/v1/files", data={"purpose": "fine-tune", **fields}, files={"file": ("look.zip", zip_folder(footage))}
        )
        assert sent.status_code == 200, sent.text
        assert settled_file(client, f"/v1/files/{sent.json()['id']}")["status"] == "processed"
        return sent.json()["id"]

    undeclared = upload(api.acme)
    error = assert_openai_error(
        api.acme.post("/v1/fine_tuning/jobs", json={"model": "reelforge-tiny", "training_file": undeclared}),
        400,
        code="consent_required",
        param="training_file",
    )
    assert f"{undeclared} (look.zip) has 1 video(s) showing people's faces" in error["message"]
    assert "portrait.mp4" in error["message"] and "clip_0000" not in error["message"]

    declared = upload(api.acme, consent="signed model releases, 2026-11")
    created = api.acme.post("/v1/fine_tuning/jobs", json={"model": "reelforge-tiny", "training_file": declared})
    assert created.status_code == 200, created.text
    theirs = upload(api.globex)
    created = api.globex.post("/v1/fine_tuning/jobs", json={"model": "reelforge-tiny", "training_file": theirs})
    assert created.status_code == 200, created.text
