"""Requests a hostile client sends: each gets a 4xx naming what was wrong, never a 500, and nothing
is recorded for it. Every case here once answered 500 or was wrongly accepted (issue 17)."""

from __future__ import annotations

import io
import zipfile

import pytest

from reelforge.models.tiny.footage import write_footage
from tests.harness import assert_openai_error, settled_file, zip_folder

DEEP_JSON = b'{"prompt": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"  # under the 64 KiB body cap


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param(DEEP_JSON, None, id="json-nested-20000-deep"),
        pytest.param(b'{"prompt": "a red circle", "seed": ' + b"9" * 5000 + b"}", None, id="seed-5000-digits"),
        pytest.param(b'{"prompt": "a red \\ud800 circle"}', "prompt", id="lone-surrogate"),
        pytest.param('{"prompt": "a red circle", "seconds": "²"}'.encode(), "seconds", id="seconds-superscript"),
        pytest.param('{"prompt": "a red circle", "size": "3²x32"}'.encode(), "size", id="size-superscript"),
        pytest.param(b'{"prompt": "a red circle", "seconds": true}', "seconds", id="seconds-true"),
        pytest.param(b'{"prompt": "a red circle", "seed": 1.5}', "seed", id="seed-float"),
        pytest.param('{"prompt": "a red circle", "steps": "١٠"}'.encode(), "steps", id="steps-arabic-digits"),
        pytest.param(b'{"prompt": "a red circle", "guidance": true}', "guidance", id="guidance-true"),
        pytest.param(b'{"prompt": "a red \\u0000 circle"}', "prompt", id="prompt-nul"),
        pytest.param(b'{"prompt": ""}', "prompt", id="empty-prompt"),
        pytest.param(b'{"prompt": "' + b"x" * 3000 + b'"}', "prompt", id="prompt-too-long"),
        pytest.param(
            b'{"prompt": "a", "model": "ft:reelforge-tiny:acme:x\' OR name LIKE \'%"}', "model", id="model-quote"
        ),
        pytest.param(b'{"prompt": "a", "model": "ft:reelforge-tiny:acme:look@1\'"}', "model", id="model-version-quote"),
        pytest.param(b'{"prompt": "a", "model": "ft:reelforge-tiny:acme:LOOK"}', "model", id="model-uppercase"),
    ],
)
def test_hostile_video_bodies_are_refused_by_name(api, body, param):
    response = api.acme.post("/v1/videos", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 404, 413), response.text
    error = assert_openai_error(response, response.status_code)
    if param is not None:
        assert error["param"] == param, error
    assert api.acme.get("/v1/videos").json()["data"] == []


def test_a_huge_prompt_is_refused_before_moderation(api):
    response = api.acme.post("/v1/videos", json={"prompt": "a" * 1_000_000})
    assert_openai_error(response, 413)  # the body cap (64 KiB here) comes first
    long_prompt = api.acme.post("/v1/videos", json={"prompt": "a" * 3000})
    assert assert_openai_error(long_prompt, 400)["param"] == "prompt"
    assert api.acme.get("/v1/audit").json()["data"] == []  # never reached moderation's audit record


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/audit?after={2**70}",
        "/v1/audit?after=-5",
        f"/v1/fine_tuning/jobs/ftjob-x/events?after=ftevent-{2**70}",
        "/v1/videos?after=%00",
        f"/v1/videos/{'v' * 5000}",
    ],
)
def test_absurd_cursors_and_ids_are_4xx(api, path):
    response = api.acme.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert_openai_error(response, response.status_code)


def test_an_ft_model_id_never_reaches_the_registry_unchecked(api):
    for model in ("ft:reelforge-tiny:acme:look'", 'ft:reelforge-tiny:acme:lo"ok', "ft:reelforge-tiny:acme:look@x y"):
        assert assert_openai_error(api.acme.get(f"/v1/models/{model}"), 404)["param"] == "model"


def _upload(api, name: str, data: bytes):
    return api.acme.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": (name, data, "application/zip")})


@pytest.fixture(scope="module")
def good_zip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("footage")
    write_footage(folder, count=1, seed=3)
    return zip_folder(folder)


@pytest.mark.parametrize("name", [b"foot\x00age.zip", b"foot\x1bage.zip", b"foot\nage.zip"])
def test_upload_names_with_nul_or_control_characters_are_refused(api, good_zip, name):
    # Written by hand: HTTP clients percent-encode such names, a hostile client need not.
    boundary = b"reelforge-boundary"
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
        b"Content-Type: application/zip\r\n\r\n" + good_zip + b"\r\n--" + boundary + b"--\r\n"
    )
    response = api.acme.post(
        "/v1/files", content=body, headers={"content-type": "multipart/form-data; boundary=reelforge-boundary"}
    )
    error = assert_openai_error(response, 400)
    assert error["param"] == "file" and "control characters" in error["message"], error
    assert api.acme.get("/v1/files").json()["data"] == []


def test_a_long_non_ascii_upload_name_is_kept_and_validated(api, good_zip):
    name = "广告素材" * 75 + ".zip"  # 300 characters, 900 bytes: longer than a file name may be on disk
    response = _upload(api, name, good_zip)
    assert response.status_code == 200, response.text
    uploaded = settled_file(api.acme, f"/v1/files/{response.json()['id']}")
    assert uploaded["status"] == "processed", uploaded["status_details"]
    assert uploaded["filename"].endswith(".zip") and len(uploaded["filename"]) <= 255


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]], good_zip: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if good_zip is not None:
            with zipfile.ZipFile(io.BytesIO(good_zip)) as good:
                for info in good.infolist():
                    archive.writestr(info, good.read(info))
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def _with_flag(data: bytes, member: str, flag_bits: int = 0, method: int | None = None) -> bytes:
    """Rewrite one member's local and central headers: set general-purpose flag bits or the method."""
    out = bytearray(data)
    name = member.encode()
    for signature, flag_at, method_at, name_len_at, name_at in (
        (b"PK\x03\x04", 6, 8, 26, 30),
        (b"PK\x01\x02", 8, 10, 28, 46),
    ):
        start = 0
        while (start := out.find(signature, start)) != -1:
            length = int.from_bytes(out[start + name_len_at : start + name_len_at + 2], "little")
            if out[start + name_at : start + name_at + length] == name:
                flags = int.from_bytes(out[start + flag_at : start + flag_at + 2], "little") | flag_bits
                out[start + flag_at : start + flag_at + 2] = flags.to_bytes(2, "little")
                if method is not None:
                    out[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    return bytes(out)


def _corrupt_deflate(good_zip: bytes) -> bytes:
    """The good footage plus a deflated member whose compressed stream is damaged mid-way."""
    info = zipfile.ZipInfo("broken.txt")
    info.compress_type = zipfile.ZIP_DEFLATED
    data = bytearray(_zip([(info, bytes(range(256)) * 64)], good_zip))
    start = data.rfind(b"broken.txt", 0, data.find(b"PK\x01\x02")) + len("broken.txt")  # local header's name
    data[start + 20 : start + 60] = b"\x00" * 40  # inside the compressed stream
    return bytes(data)


@pytest.mark.parametrize(
    ("build", "status", "needle"),
    [
        pytest.param(
            lambda good: _with_flag(_zip([("secret.txt", b"x")], good), "secret.txt", flag_bits=0x1),
            "processed",
            "secret.txt: unreadable archive member",
            id="encrypted",
        ),
        pytest.param(
            lambda good: _with_flag(_zip([("odd.txt", b"x")], good), "odd.txt", method=99),
            "processed",
            "odd.txt: unreadable archive member",
            id="unknown-method",
        ),
        pytest.param(
            lambda good: _zip([("clash", b"x"), ("clash/inner.txt", b"y")], good),
            "processed",
            "clash/inner.txt: unreadable archive member",
            id="file-dir-clash",
        ),
        pytest.param(
            lambda good: _zip([("a" * 300 + ".txt", b"x")], good),
            "processed",
            "a" * 300 + ".txt: unreadable archive member",
            id="overlong-name",
        ),
        pytest.param(
            lambda good: _zip([("metadata.jsonl", b'["not", "an", "object"]\n')], good),
            "error",
            "metadata.jsonl line 1 is a JSON list",
            id="jsonl-row-not-object",
        ),
        pytest.param(
            lambda good: _zip([("clip_0000.txt", "une légende".encode("latin-1"))], good),
            "error",
            "clip_0000.mp4: caption is not UTF-8 text",
            id="caption-not-utf8",
        ),
        pytest.param(
            lambda good: _zip([("metadata.csv", "file,caption\nclip_0000.mp4,é\n".encode("latin-1"))], good),
            "error",
            "metadata.csv is not UTF-8 text",
            id="csv-not-utf8",
        ),
    ],
)
def test_hostile_archives_are_reported_per_file_not_500(api, good_zip, build, status, needle):
    response = _upload(api, "footage.zip", build(good_zip))
    assert response.status_code == 200, response.text
    uploaded = settled_file(api.acme, f"/v1/files/{response.json()['id']}")
    assert uploaded["status"] == status and needle in uploaded["status_details"], uploaded


def test_a_corrupt_deflate_stream_rejects_that_member_only(api, good_zip):
    response = _upload(api, "footage.zip", _corrupt_deflate(good_zip))
    assert response.status_code == 200, response.text
    uploaded = settled_file(api.acme, f"/v1/files/{response.json()['id']}")
    assert uploaded["status"] == "processed" and "broken.txt" in uploaded["status_details"], uploaded


def test_a_negative_prompt_is_kept_for_the_sampler_or_refused_where_it_would_be_ignored(api):
    created = api.acme.post("/v1/videos", json={"prompt": "a red circle", "negative_prompt": "blurry, a blue square"})
    assert created.status_code == 200, created.text
    assert api.services.videos.jobs.peek(created.json()["id"]).negative_prompt == "blurry, a blue square"
    ignored = api.acme.post("/v1/videos", json={"prompt": "a red circle", "negative_prompt": "blurry", "guidance": 1.0})
    assert "no effect at guidance 1" in assert_openai_error(ignored, 400, param="negative_prompt")["message"]
