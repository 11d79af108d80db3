"""`input_reference` and remix through the API app (FastAPI's TestClient, real stores, no Ray).

The generators' capabilities are the one stand-in (see `ApiClients`): here they say whether the
served model takes an image, so every branch of the rule is reached without a Serve deployment.
The Ray-backed end-to-end run with the openai client is in test_image_to_video_api.py.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from reelforge.platform.serving.first_frames import frame_of_png
from tests.harness import TINY, ApiClients, assert_openai_error

PROMPT = "moving left on a white background"
TI2V = replace(TINY, image_input="optional")


def png(w: int = 48, h: int = 48, colour=(200, 40, 40)) -> bytes:
    image = np.full((h, w, 3), 255, np.uint8)
    image[h // 4 : h // 2, w // 4 : w // 2] = colour
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def api(tmp_path) -> ApiClients:
    return ApiClients(tmp_path / "home", caps=TI2V)


def create(http, image: bytes | None, **fields):
    files = {"input_reference": ("frame.png", image, "image/png")} if image is not None else None
    return http.post("/v1/videos", data={"prompt": PROMPT, "size": "32x32", **fields}, files=files)


def test_an_accepted_image_is_fitted_stored_and_recorded(api):
    response = create(api.acme, png(), seed="5")
    assert response.status_code == 200, response.text
    job = api.services.videos.jobs.peek(response.json()["id"])
    stored = api.services.videos.blobs.read_reference("acme", job.id)
    assert job.reference_sha256 == hashlib.sha256(stored).hexdigest()
    frame = frame_of_png(stored, job.reference_sha256)
    assert frame.shape == (32, 32, 3)  # fitted to the request's size, once, at the door
    assert tuple(frame[12, 12]) == (200, 40, 40) and tuple(frame[28, 28]) == (255, 255, 255)


def test_remix_reuses_settings_seed_and_first_frame_with_a_new_prompt(api):
    source = create(api.acme, png(), seed="9", seconds="1").json()
    remixed = api.acme.post(f"/v1/videos/{source['id']}/remix", json={"prompt": "moving right on a white background"})
    assert remixed.status_code == 200, remixed.text
    body = remixed.json()
    assert body["remixed_from_video_id"] == source["id"] and body["prompt"] == "moving right on a white background"
    a, b = (api.services.videos.jobs.peek(i) for i in (source["id"], body["id"]))
    assert (b.seed, b.size, b.seconds, b.num_frames, b.model) == (a.seed, a.size, a.seconds, a.num_frames, a.model)
    assert b.reference_sha256 == a.reference_sha256
    assert api.services.videos.blobs.read_reference("acme", b.id) == api.services.videos.blobs.read_reference(
        "acme", a.id
    )
    # Another tenant's video id is "does not exist"; a refused prompt and a bad body are 400s.
    assert_openai_error(api.globex.post(f"/v1/videos/{source['id']}/remix", json={"prompt": "x"}), 404)
    assert_openai_error(api.acme.post(f"/v1/videos/{source['id']}/remix", json={"prompt": ""}), 400)
    assert_openai_error(api.acme.post(f"/v1/videos/{source['id']}/remix", json={"prompt": "x", "seed": 1}), 400)
    assert_openai_error(api.acme.post("/v1/videos/video_missing/remix", json={"prompt": "x"}), 404)


def test_remix_of_a_deleted_image_video_says_its_frame_is_gone(api):
    source = create(api.acme, png()).json()
    api.services.videos.blobs.remove("acme", source["id"])  # what expiry does to a finished video's files
    error = assert_openai_error(api.acme.post(f"/v1/videos/{source['id']}/remix", json={"prompt": "x"}), 400)
    assert "no longer stored" in error["message"]


def _animated() -> bytes:
    out = io.BytesIO()
    frames = [Image.new("RGB", (48, 48), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:])
    return out.getvalue()


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("image", "needle"),
    [
        (b"GIF87a not really", "not an image"),
        (png(10, 10), "too small for a 32x32 video"),
        (_animated(), "is animated"),
        (png(200, 40), "aspect ratio"),
        (_bomb(), "megapixels"),
    ],
    ids=["not-an-image", "too-small", "animated", "aspect-ratio", "huge"],
)
def test_each_bad_image_is_a_400_naming_input_reference(api, image: bytes, needle: str):
    error = assert_openai_error(create(api.acme, image), 400, code="invalid_image", param="input_reference")
    assert needle in error["message"]
    assert api.services.videos.jobs.list("acme", None, 10, "desc")[0] == []  # nothing recorded


def test_image_rules_follow_the_model(tmp_path):
    t2v = ApiClients(tmp_path / "t2v")
    error = assert_openai_error(create(t2v.acme, png()), 400, param="input_reference")
    assert "text-to-video model and takes no input_reference" in error["message"]
    i2v = ApiClients(tmp_path / "i2v", caps=replace(TINY, image_input="required"))
    error = assert_openai_error(create(i2v.acme, None), 400, param="input_reference")
    assert "image-to-video model: send the first frame" in error["message"]


def test_an_idempotent_retry_with_another_image_is_a_conflict(api):
    headers = {"Idempotency-Key": "frame-1"}
    first = api.acme.post(
        "/v1/videos", data={"prompt": PROMPT}, files={"input_reference": ("a.png", png(), "image/png")}, headers=headers
    )
    again = api.acme.post(
        "/v1/videos", data={"prompt": PROMPT}, files={"input_reference": ("a.png", png(), "image/png")}, headers=headers
    )
    assert first.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = api.acme.post(
        "/v1/videos",
        data={"prompt": PROMPT},
        files={"input_reference": ("b.png", png(colour=(0, 0, 200)), "image/png")},
        headers=headers,
    )
    assert_openai_error(other, 409)
