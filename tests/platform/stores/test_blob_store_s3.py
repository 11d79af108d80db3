"""Blob storage on a real S3-protocol server (moto's standalone server on loopback, through s3fs):
the store's whole contract, and the Files API storing, validating and deleting an upload there."""

from __future__ import annotations

import time

from reelforge.models.tiny.footage import write_footage
from reelforge.platform.stores.blob_store import BlobStore
from tests.harness import ApiClients, settled_file, zip_folder

URL = "s3://reelforge/blobs"


def test_videos_put_read_and_remove_by_attempt_on_s3(s3_env):
    store = BlobStore(URL)
    store.put("acme", "video_1", "video", b"first attempt", fence=1)
    store.put("acme", "video_1", "video", b"second attempt", fence=2)
    store.put("acme", "video_1", "thumbnail", b"jpeg", fence=2)
    other = BlobStore(URL)  # another replica: no listing cache may hide what the first wrote
    assert other.read("acme", "video_1", "video", fence=2) == b"second attempt"
    other.remove_attempt("acme", "video_1", 1)
    assert not store.exists("acme", "video_1", "video", fence=1) and store.exists("acme", "video_1", "video", fence=2)
    store.remove("acme", "video_1")
    assert not other.exists("acme", "video_1", "video", fence=2) and not other.exists("acme", "video_1", "thumbnail", 2)


def test_uploads_stream_commit_and_partials_are_swept_on_s3(s3_env, tmp_path):
    store = BlobStore(URL)
    with store.open_upload("acme", "file-1") as sink:
        for _ in range(3):
            sink.write(b"x" * (6 << 20))  # 18 MB: more than one multipart part
    store.commit_upload("acme", "file-1")
    fetched = store.fetch_upload("acme", "file-1", tmp_path / "copy.zip")
    assert fetched.stat().st_size == 18 << 20 and not fetched.is_symlink()
    with store.open_upload("acme", "file-2") as sink:
        sink.write(b"cut off")  # its server died before commit
    assert store.sweep_partials(older_than_s=3600) == 0
    time.sleep(1.1)  # S3 modification times have one-second resolution
    assert store.sweep_partials(older_than_s=1) == 1
    store.discard_upload("acme", "file-1")
    assert not store.fs.exists(store.upload_path("acme", "file-1"))


def test_the_files_api_stores_validates_and_deletes_uploads_on_s3(s3_env, ray_cluster, tmp_path):
    """The validation runs in a Ray task on another process, which reaches the store with the
    ingress's object-store environment."""
    write_footage(tmp_path / "footage", count=2, seed=12)
    api = ApiClients(tmp_path / "home", storage_url=URL)
    response = api.acme.post(
        "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("look.zip", zip_folder(tmp_path / "footage"))}
    )
    assert response.status_code == 200, response.text
    file_id = response.json()["id"]
    settled = settled_file(api.acme, f"/v1/files/{file_id}")
    assert settled["status"] == "processed" and settled["status_details"].startswith("2 videos accepted")
    store = BlobStore(URL)
    assert store.fs.exists(store.upload_path("acme", file_id))
    assert api.acme.delete(f"/v1/files/{file_id}").json()["deleted"]
    assert not store.fs.exists(store.upload_path("acme", file_id))
