"""Video files on a local directory and on another fsspec filesystem (memory://), by tenant and id."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reelforge.platform.stores.blob_store import BlobStore


@pytest.mark.parametrize("url", ["memory://reelforge-blobs", "local"])
def test_blob_store_on_fsspec_urls(url, tmp_path):
    blobs = BlobStore(str(tmp_path / "blobs") if url == "local" else url)
    path = blobs.put("acme", "video_1", "video", b"\x00\x00\x00\x18ftypmp42")
    assert path.endswith("videos/acme/video_1.mp4") and blobs.read("acme", "video_1") == b"\x00\x00\x00\x18ftypmp42"
    assert not blobs.exists("globex", "video_1")
    with pytest.raises(FileNotFoundError):
        blobs.read("acme", "video_1", "thumbnail")
    blobs.remove("acme", "video_1")
    assert not blobs.exists("acme", "video_1")
    blobs.remove("acme", "video_1")  # removing twice is fine


def test_stale_partial_writes_are_swept_and_fresh_ones_kept(tmp_path):
    blobs = BlobStore(str(tmp_path / "blobs"))
    with blobs.open_upload("acme", "file-old") as handle:
        handle.write(b"half an upload")
    with blobs.open_upload("acme", "file-new") as handle:
        handle.write(b"an upload in progress")
    old = Path(blobs.upload_path("acme", "file-old") + ".partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert blobs.sweep_partials(older_than_s=3600) == 1
    assert not old.exists() and Path(blobs.upload_path("acme", "file-new") + ".partial").exists()
