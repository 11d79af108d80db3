"""Blobs (generated videos, uploaded footage): a local directory by default, any fsspec URL
(s3://, gs://, ...) on a cluster.

Layout: `<root>/videos/<tenant>/<video id>.<fence>.<variant extension>` and
`<root>/files/<tenant>/<file id>`. A video's files carry the fencing token of the attempt that made
them, so an attempt that lost its lease can never overwrite the files of the one that completed:
the job row's fence names the files to serve. Writes go to a temporary name first and are renamed
(on object stores: written whole), so a reader never sees half a file.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import fsspec

VARIANTS = {"video": ("mp4", "video/mp4"), "thumbnail": ("jpg", "image/jpeg")}
# How s3fs finds an S3-compatible store: what a process that reads our blobs must inherit.
OBJECT_STORE_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
)


def object_store_env() -> dict[str, str]:
    """This process's object-store settings, for the Ray tasks and jobs it starts on other processes."""
    return {key: os.environ[key] for key in OBJECT_STORE_ENV if os.environ.get(key)}


class BlobStore:
    """Put, read and remove videos and uploads by tenant and id."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # Object stores: no listing cache, since other replicas write the same prefixes, and an instance of
        # our own (fsspec would share one across stores with other endpoints). Credentials and
        # endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL for MinIO and the like).
        options = (
            {}
            if "://" not in self.url or self.url.startswith("file://")
            else {"use_listings_cache": False, "skip_instance_cache": True}
        )
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)

    def path(self, tenant: str, video_id: str, variant: str = "video", fence: int = 0) -> str:
        extension, _ = VARIANTS[variant]
        attempt = f".{fence}" if fence else ""  # fence 0: files written before fencing existed
        return f"{self.root}/videos/{tenant}/{video_id}{attempt}.{extension}"

    def put(self, tenant: str, video_id: str, variant: str, data: bytes, fence: int = 0) -> str:
        """Store one file of attempt `fence` of a video; returns its path in the store."""
        return self._write_whole(self.path(tenant, video_id, variant, fence), data)

    def _write_whole(self, target: str, data: bytes) -> str:
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        partial = f"{target}.{uuid.uuid4().hex}.partial"
        with self.fs.open(partial, "wb") as handle:
            handle.write(data)
        self.fs.mv(partial, target)
        return target

    def exists(self, tenant: str, video_id: str, variant: str = "video", fence: int = 0) -> bool:
        return self.fs.exists(self.path(tenant, video_id, variant, fence))

    def read(self, tenant: str, video_id: str, variant: str = "video", fence: int = 0) -> bytes:
        """A stored file's bytes (FileNotFoundError when absent)."""
        with self.fs.open(self.path(tenant, video_id, variant, fence), "rb") as handle:
            return handle.read()

    def remove(self, tenant: str, video_id: str) -> None:
        """Delete every file of every attempt of a video, partial ones included; missing files are fine."""
        for path in self.fs.glob(f"{self.root}/videos/{tenant}/{video_id}.*"):
            self.fs.rm(path)

    def remove_attempt(self, tenant: str, video_id: str, fence: int) -> None:
        """Delete the files one superseded attempt of a video wrote; the winning attempt's stay."""
        for variant in VARIANTS:
            path = self.path(tenant, video_id, variant, fence)
            if self.fs.exists(path):
                self.fs.rm(path)

    # ---- image-to-video first frames ------------------------------------------------------
    def reference_path(self, tenant: str, video_id: str) -> str:
        return f"{self.root}/videos/{tenant}/{video_id}.reference.png"

    def put_reference(self, tenant: str, video_id: str, png: bytes) -> str:
        """Store a video's fitted first frame (written whole before the job is recorded; `remove` deletes it)."""
        return self._write_whole(self.reference_path(tenant, video_id), png)

    def read_reference(self, tenant: str, video_id: str) -> bytes:
        """A video's first-frame PNG (FileNotFoundError when absent)."""
        with self.fs.open(self.reference_path(tenant, video_id), "rb") as handle:
            return handle.read()

    def sweep_partials(self, older_than_s: float) -> int:
        """Remove partial writes (an upload or a store cut off by a crash) not touched for `older_than_s`."""
        cutoff = time.time() - older_than_s
        swept = 0
        for pattern in ("files/*/*.partial", "videos/*/*.partial"):
            for path in self.fs.glob(f"{self.root}/{pattern}"):
                try:
                    stale = self.fs.modified(path).timestamp() < cutoff
                except (FileNotFoundError, NotImplementedError):
                    continue
                if stale:
                    self.fs.rm(path)
                    swept += 1
        return swept

    # ---- uploads ---------------------------------------------------------------------------
    def upload_path(self, tenant: str, file_id: str) -> str:
        return f"{self.root}/files/{tenant}/{file_id}"

    def open_upload(self, tenant: str, file_id: str):
        """A binary writer for an upload's bytes, at a temporary name until `commit_upload`."""
        target = self.upload_path(tenant, file_id)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(f"{target}.partial", "wb")

    def commit_upload(self, tenant: str, file_id: str) -> None:
        """Make a fully written upload visible under its id."""
        target = self.upload_path(tenant, file_id)
        self.fs.mv(f"{target}.partial", target)

    def discard_upload(self, tenant: str, file_id: str) -> None:
        """Remove an upload, finished or partial."""
        for path in (self.upload_path(tenant, file_id), f"{self.upload_path(tenant, file_id)}.partial"):
            if self.fs.exists(path):
                self.fs.rm(path)

    def fetch_upload(self, tenant: str, file_id: str, destination: Path) -> Path:
        """The upload at `destination`: a link to it when the store is local, else a downloaded copy.

        Its name is the destination's: readers tell an archive's type from its name.
        """
        source = self.upload_path(tenant, file_id)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.unlink(missing_ok=True)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "file" in protocols:
            destination.symlink_to(Path(source).resolve())
        else:
            self.fs.get(source, str(destination))
        return destination
