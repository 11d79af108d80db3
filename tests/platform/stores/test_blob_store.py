"""Video files on a local directory and on another fsspec filesystem (memory://), by tenant and id."""

from __future__ import annotations

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
