"""Extract a footage archive safely, streaming, under budgets that a hostile archive cannot pass.

Members are read one at a time and copied in chunks; the sizes an archive declares are never
trusted. A member is refused, by name, when its path is absolute, climbs out with `..`, is a link
or device, or nests deeper than the budget; when it cannot be read (encrypted, an unknown
compression method, a damaged stream, a name the file system refuses); or when copying it would
pass the budget for one member, for the whole archive, or the compression ratio a zip bomb needs.
Members past the member count are refused together in one line. The other members still count.
"""

from __future__ import annotations

import contextlib
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reelforge.jobs.footage_rejections import RejectedFile, RejectReason

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ArchiveBudget:
    """How much an archive may make on disk."""

    max_members: int = 5000
    max_total_bytes: int = 64 << 30  # uncompressed, over all members
    max_member_bytes: int = 8 << 30
    max_ratio: float = 200.0  # uncompressed / compressed bytes of one zip member (video barely compresses)
    max_depth: int = 16  # folders in a member's path


class OverBudget(Exception):
    """Copying a member would pass one of the budget's limits (the message names which)."""


# What reading one archive member can raise: encryption (RuntimeError), an unknown compression
# method (NotImplementedError), a damaged stream (zlib.error, BadZipFile, EOFError), and names the
# file system refuses (a file where a folder is, an empty or overlong name: OSError).
MEMBER_ERRORS = (RuntimeError, NotImplementedError, zlib.error, zipfile.BadZipFile, tarfile.TarError, EOFError, OSError)


def safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it is absolute or climbs out with `..`."""
    path = PurePosixPath(name.replace("\\", "/"))
    if (
        path.is_absolute()
        or name.startswith(("/", "\\"))
        or ".." in path.parts
        or (path.parts and ":" in path.parts[0])
    ):
        return None
    return path


class _Extraction:
    """The running totals of one archive's extraction against its budget."""

    def __init__(self, dest: Path, budget: ArchiveBudget) -> None:
        self.dest = dest
        self.budget = budget
        self.members = 0
        self.total_bytes = 0
        self.over_count = 0
        self.refused: list[RejectedFile] = []

    def admit(self, name: str, rel: PurePosixPath | None, unsafe: bool) -> bool:
        """Whether a member may be extracted at all (path, kind, depth, count); refusals are recorded."""
        if rel is None or unsafe:
            self.refused.append(
                RejectedFile(name, RejectReason.UNSAFE_ARCHIVE_MEMBER, "absolute path, '..', link or device")
            )
            return False
        if len(rel.parts) - 1 > self.budget.max_depth:
            detail = f"nested {len(rel.parts) - 1} folders deep; at most {self.budget.max_depth}"
            self.refused.append(RejectedFile(name[:300], RejectReason.ARCHIVE_BUDGET, detail))
            return False
        if self.members >= self.budget.max_members:
            self.over_count += 1
            return False
        self.members += 1
        return True

    def copy(self, name: str, read, rel: PurePosixPath, compressed_bytes: int | None = None) -> None:
        """Stream one member to `dest / rel`, refusing it if it turns out unreadable or over budget."""
        target = self.dest / rel
        written = 0
        try:
            if target == self.dest:
                raise OSError("the member has an empty name")
            target.parent.mkdir(parents=True, exist_ok=True)
            with read() as source, open(target, "wb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    written += len(chunk)
                    self._check(written, compressed_bytes)
                    out.write(chunk)
            self.total_bytes += written
        except (OverBudget, *MEMBER_ERRORS) as exc:
            with contextlib.suppress(OSError):  # a partly written member is not footage
                target.unlink(missing_ok=True)
            reason = (
                RejectReason.ARCHIVE_BUDGET if isinstance(exc, OverBudget) else RejectReason.UNREADABLE_ARCHIVE_MEMBER
            )
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            self.refused.append(RejectedFile(name, reason, detail))

    def _check(self, written: int, compressed_bytes: int | None) -> None:
        budget = self.budget
        if written > budget.max_member_bytes:
            raise OverBudget(f"more than {budget.max_member_bytes} bytes uncompressed")
        if self.total_bytes + written > budget.max_total_bytes:
            raise OverBudget(f"the archive would pass {budget.max_total_bytes} bytes uncompressed")
        if (
            compressed_bytes is not None
            and written > CHUNK_BYTES
            and written > budget.max_ratio * max(1, compressed_bytes)
        ):
            raise OverBudget(f"compression ratio over {budget.max_ratio:g}:1 (a zip bomb, not footage)")

    def finish(self) -> list[RejectedFile]:
        if self.over_count:
            detail = f"{self.over_count} members past the first {self.budget.max_members} were not extracted"
            self.refused.append(RejectedFile("(archive)", RejectReason.ARCHIVE_BUDGET, detail))
        return self.refused


def extract_archive(archive: Path, dest: Path, budget: ArchiveBudget | None = None) -> list[RejectedFile]:
    """Extract the archive's safe, readable regular files into `dest` within `budget`; return the refusals."""
    dest.mkdir(parents=True, exist_ok=True)
    extraction = _Extraction(dest, budget or ArchiveBudget())
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                rel = safe_member_path(info.filename)
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if extraction.admit(info.filename, rel, is_link):
                    extraction.copy(info.filename, lambda info=info: zf.open(info), rel, info.compress_size)
        return extraction.finish()
    with tarfile.open(archive) as tf:
        for member in tf:  # streamed: the member index is never read whole
            if member.isdir():
                continue
            rel = safe_member_path(member.name)
            if extraction.admit(member.name, rel, not member.isfile()):
                extraction.copy(member.name, lambda member=member: tf.extractfile(member), rel)
    return extraction.finish()
