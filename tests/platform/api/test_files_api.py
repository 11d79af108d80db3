"""`/v1/files` on the real Serve app: footage archives stream to storage, are validated with the
ingestion inventory, and stay private to their tenant."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import openai
import pytest

from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from tests.harness import assert_openai_error, settled_file, zip_folder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def footage_zip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("footage")
    write_footage(folder, count=3, seed=5, brand=BrandLook("lower-third", "orange"))
    return zip_folder(folder)


@pytest.fixture(scope="module")
def file_keys(api_platform) -> dict[str, str]:
    return {name: api_platform.tenants.create(name)[1] for name in ("uploader", "snooper")}


def test_openai_client_uploads_lists_retrieves_and_deletes_footage(api_platform, file_keys, footage_zip):
    client = openai.OpenAI(base_url=api_platform.base_url, api_key=file_keys["uploader"], max_retries=0)
    created = client.files.create(file=("footage.zip", footage_zip, "application/zip"), purpose="fine-tune")
    # Stored and answered at once; validation runs in the background, as with OpenAI's Files API.
    assert created.id.startswith("file-") and created.status == "uploaded" and created.status_details is None
    uploaded = client.files.wait_for_processing(created.id, poll_interval=0.2, max_wait_seconds=120)
    assert uploaded.status == "processed", uploaded.status_details
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (len(footage_zip), "footage.zip", "fine-tune")
    assert uploaded.status_details.startswith("3 videos accepted, 0 files rejected")
    assert [f.id for f in client.files.list(purpose="fine-tune").data] == [uploaded.id]
    stored = Path(api_platform.config.storage_url) / "files" / "uploader" / uploaded.id
    assert stored.read_bytes() == footage_zip
    assert client.files.delete(uploaded.id).deleted
    assert not stored.exists()
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_another_tenants_file_is_404(api_platform, file_keys, footage_zip):
    with api_platform.client(file_keys["uploader"]) as owner, api_platform.client(file_keys["snooper"]) as snooper:
        file_id = owner.post("/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", footage_zip)}).json()[
            "id"
        ]
        assert_openai_error(snooper.get(f"/files/{file_id}"), 404, "not_found")
        assert_openai_error(snooper.delete(f"/files/{file_id}"), 404, "not_found")
        assert snooper.get("/files").json()["data"] == []
        assert settled_file(owner, f"/files/{file_id}")["status"] == "processed"


def test_oversized_upload_is_413_and_leaves_nothing(api_platform, file_keys):
    with api_platform.client(file_keys["uploader"]) as http:
        before = http.get("/files").json()["data"]
        response = http.post(
            "/files", data={"purpose": "fine-tune"}, files={"file": ("big.zip", b"\0" * (1 << 20 | 1))}
        )
        assert "1048576" in assert_openai_error(response, 413, "request_too_large")["message"]
        assert http.get("/files").json()["data"] == before
    leftovers = list((Path(api_platform.config.storage_url) / "files").rglob("*.partial"))
    assert leftovers == []


def test_traversal_members_are_rejected_and_never_written(api_platform, file_keys, footage_zip, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        with zipfile.ZipFile(io.BytesIO(footage_zip)) as source:
            for name in source.namelist():
                data = source.read(name)
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 4
        archive.addfile(evil, io.BytesIO(b"evil"))
    with api_platform.client(file_keys["uploader"]) as http:
        response = http.post(
            "/files", data={"purpose": "fine-tune"}, files={"file": ("footage.tar.gz", buffer.getvalue())}
        )
        assert response.status_code == 200, response.text
        body = settled_file(http, f"/files/{response.json()['id']}")
    assert body["status"] == "processed"
    assert (
        "3 videos accepted, 1 files rejected" in body["status_details"]
        and "../../escaped.txt" in body["status_details"]
    )
    assert not any(p.name == "escaped.txt" for p in Path(api_platform.config.home).parent.rglob("escaped.txt"))


@pytest.mark.parametrize(
    ("data", "files", "status", "param", "needle"),
    [
        ({"purpose": "assistants"}, {"file": ("f.zip", b"PK")}, 400, "purpose", "not supported"),
        ({"purpose": "fine-tune"}, {"file": ("notes.txt", b"hello")}, 400, "file", "not a footage archive"),
        ({"purpose": "fine-tune"}, None, 400, "file", "no file"),
    ],
)
def test_bad_uploads_are_400(api_platform, file_keys, data, files, status, param, needle):
    with api_platform.client(file_keys["uploader"]) as http:
        before = http.get("/files").json()["data"]
        response = (
            http.post("/files", data=data, files=files)
            if files
            else http.post("/files", data=data, files={"x": (None, "y")})
        )
        assert needle in assert_openai_error(response, status, param=param)["message"]
        assert http.get("/files").json()["data"] == before


def test_unusable_archives_are_recorded_as_error_with_the_reason(api_platform, file_keys, footage_zip):
    captionless = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(footage_zip)) as source, zipfile.ZipFile(captionless, "w") as archive:
        for name in source.namelist():
            if name.endswith(".mp4"):
                archive.writestr(name, source.read(name))
    with api_platform.client(file_keys["uploader"]) as http:
        corrupt = http.post(
            "/files", data={"purpose": "fine-tune"}, files={"file": ("broken.zip", b"PK\x03\x04 not a zip")}
        ).json()
        corrupt = settled_file(http, f"/files/{corrupt['id']}")
        assert corrupt["status"] == "error" and "unreadable" in corrupt["status_details"]
        no_captions = http.post(
            "/files", data={"purpose": "fine-tune"}, files={"file": ("nocap.zip", captionless.getvalue())}
        ).json()
        no_captions = settled_file(http, f"/files/{no_captions['id']}")
        assert no_captions["status"] == "error" and no_captions["status_details"].startswith(
            "0 videos accepted, 3 files rejected"
        )
        assert "caption" in no_captions["status_details"]
