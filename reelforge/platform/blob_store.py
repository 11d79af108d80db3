"""Video files: a local directory by default, any fsspec URL (s3://, gs://, ...) on a cluster.

Layout: `<root>/videos/<tenant>/<video id>.<variant extension>`. Writes go to a temporary name
first and are renamed (on object stores: written whole), so a reader never sees half a video.
"""

from __future__ import annotations

import uuid

import fsspec

VARIANTS = {"video": ("mp4", "video/mp4"), "thumbnail": ("jpg", "image/jpeg")}


class VideoBlobStore:
    """Put, read and remove a video's files by tenant and id."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def path(self, tenant: str, video_id: str, variant: str = "video") -> str:
        extension, _ = VARIANTS[variant]
        return f"{self.root}/videos/{tenant}/{video_id}.{extension}"

    def put(self, tenant: str, video_id: str, variant: str, data: bytes) -> str:
        """Store one file of a video; returns its path in the store."""
        target = self.path(tenant, video_id, variant)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        partial = f"{target}.{uuid.uuid4().hex}.partial"
        with self.fs.open(partial, "wb") as handle:
            handle.write(data)
        self.fs.mv(partial, target)
        return target

    def exists(self, tenant: str, video_id: str, variant: str = "video") -> bool:
        return self.fs.exists(self.path(tenant, video_id, variant))

    def read(self, tenant: str, video_id: str, variant: str = "video") -> bytes:
        """A stored file's bytes (FileNotFoundError when absent)."""
        with self.fs.open(self.path(tenant, video_id, variant), "rb") as handle:
            return handle.read()

    def remove(self, tenant: str, video_id: str) -> None:
        """Delete every variant of a video; missing files are fine."""
        for variant in VARIANTS:
            path = self.path(tenant, video_id, variant)
            if self.fs.exists(path):
                self.fs.rm(path)
