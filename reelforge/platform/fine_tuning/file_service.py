"""The Files API's logic: stream an upload to storage, validate it as footage, read and delete it.

An upload is recorded `uploaded` at once; `validate` (run by the `UploadValidator`, in a Ray task)
settles it later.

Validation is the ingestion inventory against the default base model's requirements: every video
accepted or rejected with a reason, archive members with unsafe paths never written. A file with
no usable video is `error`, with the reasons in `status_details`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.requests import Request

from reelforge.errors import UserInputError
from reelforge.jobs.footage_inventory import ARCHIVE_SUFFIXES, inventory_source
from reelforge.jobs.ingest import footage_requirements
from reelforge.jobs.training_data import ingested_dir_for
from reelforge.models.loading import describe_model
from reelforge.platform.api.upload_stream import stream_multipart_upload
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.files import (
    PURPOSES,
    FileStore,
    UploadedFile,
    new_file_id,
)
from reelforge.platform.stores.fine_tune_jobs import ACTIVE as FINE_TUNE_ACTIVE
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
from reelforge.platform.stores.tenants import Tenant

logger = logging.getLogger(__name__)
MAX_NAME_CHARS = 255  # the files table's filename column
MAX_DETAILS = 20  # rejected files named in status_details; the full report is kept on the row


def upload_name(filename: str | None) -> str:
    """The upload's base name as stored (at most 255 characters, suffix kept), or a 400 for one no file has."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise UserInputError(f"file name {name[:100]!r} holds control characters", param="file")
    if len(name) > MAX_NAME_CHARS:
        _, dot, suffix = name.rpartition(".")
        suffix = ".tar.gz" if name.lower().endswith(".tar.gz") else dot + suffix
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name


@dataclass(frozen=True)
class FileDeletion:
    """A deleted upload, how many derived directories went with it, and what was kept and why."""

    file: UploadedFile
    removed_dirs: int
    kept: list[str]


def _remove_tree(path: Path) -> int:
    """Remove a directory tree if it is there; 1 if it was."""
    if not path.is_dir():
        return 0
    shutil.rmtree(path, ignore_errors=True)
    return 1


class FileService:
    """Tenant-scoped uploads of footage for fine-tuning."""

    def __init__(self, config: ServeAppConfig) -> None:
        self.config = config
        self.settings = config.settings()
        self.files = FileStore(self.settings.resolved_database_url)
        self.blobs = BlobStore(self.settings.resolved_storage_url)

    async def upload(self, tenant: Tenant, request: Request, uploader: str, lease_s: float) -> UploadedFile:
        """Stream the multipart body's file to storage and record it as `uploaded`, its validation leased for `lease_s`.

        The row keeps the upload's rights declaration: the uploader and the optional `license` /
        `consent` form fields, which apply to every video the archive's metadata leaves undeclared.
        """
        file_id = new_file_id()
        try:
            # The tenant's training policy may allow less than the server-wide cap, never more.
            limit = min(self.config.max_upload_bytes, self.config.fine_tuning.policy_for(tenant.name).max_upload_bytes)
            upload = await stream_multipart_upload(request, lambda: self.blobs.open_upload(tenant.name, file_id), limit)
            purpose = upload.fields.get("purpose")
            if purpose not in PURPOSES:
                raise UserInputError(
                    f"purpose {purpose!r} is not supported; use one of {', '.join(PURPOSES)}", param="purpose"
                )
            name = upload_name(upload.filename)
            if not name.lower().endswith(ARCHIVE_SUFFIXES):
                raise UserInputError(
                    f"file {name!r} is not a footage archive; upload a {', '.join(ARCHIVE_SUFFIXES)} of videos with captions",
                    param="file",
                )
        except BaseException:
            # Nothing half-written stays behind (shielded: a client that hangs up cancels this task).
            await asyncio.shield(asyncio.to_thread(self.blobs.discard_upload, tenant.name, file_id))
            raise
        await asyncio.to_thread(self.blobs.commit_upload, tenant.name, file_id)
        declared = {
            k: upload.fields[k].strip()[:200] for k in ("license", "consent") if (upload.fields.get(k) or "").strip()
        }
        return await asyncio.to_thread(
            self.files.create,
            file_id,
            tenant.name,
            name,
            purpose,
            upload.bytes,
            upload.sha256,
            {"uploader": uploader, **declared},
            lease_s,
        )

    def validate(self, tenant: str, file_id: str) -> UploadedFile:
        """Run the footage inventory on a stored upload and record the outcome, with each video's rights.

        Heavy: the API runs it in a Ray task (`upload_validation`), not in its own process.
        """
        stored = self.files.get(tenant, file_id)
        declaration = stored.declaration or {}
        model = describe_model(self.config.generators[0].model, self.settings, self.config.generators[0].model_path)
        with tempfile.TemporaryDirectory(prefix="reelforge-upload-") as tmp:
            # A local name of our own: the tenant's may be longer than a file system allows.
            suffix = next(s for s in ARCHIVE_SUFFIXES if stored.filename.lower().endswith(s))
            archive = self.blobs.fetch_upload(tenant, file_id, Path(tmp) / f"upload{suffix}")
            try:
                inventory = inventory_source(archive, Path(tmp) / "work", footage_requirements(model.defaults))
                report = inventory.report()
            except UserInputError as exc:
                # Name the upload as the tenant knows it, not by this server's temporary path.
                message = exc.message.replace(str(archive), stored.filename).replace(tmp, "")
                self.files.finish_validation(file_id, False, message, {"accepted": [], "rejected": []})
                return self.files.get(tenant, file_id)
        accepted, rejected = report["accepted"], report["rejected"]
        for video in accepted:  # the archive's own per-file declarations win over the upload's
            video["uploader"] = declaration.get("uploader")
            for key in ("license", "consent"):
                video[key] = video.get(key) or declaration.get(key)
        summary = f"{len(accepted)} videos accepted, {len(rejected)} files rejected (checked for {model.name})"
        reasons = [
            f"{r['file']}: {r['reason']}" + (f" ({r['detail']})" if r["detail"] else "") for r in rejected[:MAX_DETAILS]
        ]
        details = summary + ("; rejected: " + "; ".join(reasons) if reasons else "")
        self.files.finish_validation(file_id, bool(accepted), details, report)
        return self.files.get(tenant, file_id)

    def get(self, tenant: Tenant, file_id: str) -> UploadedFile:
        return self.files.get(tenant.name, file_id)

    def get_by_name(self, tenant: str, file_id: str) -> UploadedFile:
        return self.files.get(tenant, file_id)

    def list(
        self, tenant: Tenant, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[UploadedFile], bool]:
        return self.files.list(tenant.name, purpose, after, limit, order)

    def delete(self, tenant: Tenant, file_id: str) -> FileDeletion:
        """Delete the upload and what was derived from it: extracted footage and cached latents.

        A fine-tuning job still running on the file keeps its working copy until it ends; the
        deletion says so. Adapters trained on the file stay registered: they are the tenant's models.
        """
        deleted = self.files.delete(tenant.name, file_id)
        self.blobs.discard_upload(tenant.name, file_id)
        removed, kept = 0, []
        for job in FineTuneStore(self.settings.resolved_database_url).using_file(tenant.name, file_id):
            if job.status in FINE_TUNE_ACTIVE:
                kept.append(f"fine-tuning job {job.id} is {job.status}: its working copy goes when it ends")
                continue
            work = self.settings.home / "finetune" / job.id
            for label in ("training_file", "validation_file"):
                # The ingested latents of the job's copy (a download on object stores).
                removed += _remove_tree(ingested_dir_for(self.settings, tenant.name, work / label / deleted.filename))
            removed += _remove_tree(work)
        local_copy = Path(self.blobs.upload_path(tenant.name, file_id))
        removed += _remove_tree(ingested_dir_for(self.settings, tenant.name, local_copy))  # a local store's link
        return FileDeletion(deleted, removed, kept)
