"""List and validate a company's footage: the first stage of ingestion.

A source is a folder or a .zip / .tar / .tar.gz archive of videos with captions in any format
finetrainers, diffusion-pipe or musubi-tuner users already have:

* a same-stem `.txt` sidecar per video (`clip.mp4` + `clip.txt`);
* `metadata.jsonl` or `metadata.csv` with a file-name column and a caption column;
* `prompts.txt` + `videos.txt`, line by line.

The metadata tables may also declare each file's `license` and `consent` (training data rights).
Every file is accounted for: accepted (with its caption, content hash and decoded size) or rejected
with a reason. Archive members with absolute paths, `..` or links are never written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reelforge.errors import UserInputError, VideoDecodeError
from reelforge.jobs.archive_extraction import ArchiveBudget, extract_archive
from reelforge.jobs.footage_rejections import RejectedFile, RejectReason
from reelforge.models.video_io import VIDEO_SUFFIXES
from reelforge.models.video_probe import probe_video
from reelforge.safety.face_detection import shared_detector

CAPTION_FILES = ("metadata.jsonl", "metadata.csv", "prompts.txt", "videos.txt")
FILE_COLUMNS = ("file_name", "file", "video", "path", "video_path")
CAPTION_COLUMNS = ("caption", "text", "prompt")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class FootageRequirements:
    """What a video must have for the model (enough frames at its fps, enough pixels), and the limits
    that refuse a file from its container facts alone, before any decoding."""

    min_frames: int
    min_width: int
    min_height: int
    fps: float
    max_file_bytes: int = 4 << 30
    max_duration_s: float = 30 * 60.0
    max_pixels: int = 4096 * 2160  # DCI 4K
    max_videos: int = 2000
    # Look for people's faces (a dozen decoded frames per video): footage that shows faces needs the
    # recorded consent of the people shown before it is trained on (`reelforge.safety.face_consent`).
    scan_faces: bool = True
    archive: ArchiveBudget = field(default_factory=lambda: ArchiveBudget())


@dataclass(frozen=True)
class AcceptedVideo:
    """A video that passed validation, with its caption and what decoding found."""

    file: str
    caption: str
    sha256: str
    frames: int  # at the model's fps
    width: int  # as displayed (after rotation)
    height: int
    license: str | None = None  # declared in the metadata table (or, for uploads, by the uploader)
    consent: str | None = None
    duration_s: float = 0.0
    source: dict = field(default_factory=dict)  # the probe: codec, fps, rotation, bit depth, ...
    faces: dict | None = None  # FaceScan.to_dict(): where faces were seen (None: not scanned)


@dataclass
class FootageInventory:
    """Every input file, accepted or rejected."""

    root: Path
    accepted: list[AcceptedVideo] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)

    def report(self) -> dict:
        """JSON-ready summary (file paths relative to the source)."""
        return {
            "accepted": [asdict(a) for a in self.accepted],
            "rejected": [{"file": r.file, "reason": r.reason.value, "detail": r.detail} for r in self.rejected],
        }


def _read_text(path: Path, what: str) -> str:
    """A caption table's text, or a UserInputError naming the file when it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _json_rows(path: Path) -> list[tuple[int, dict]]:
    """metadata.jsonl's rows with their line numbers; each must be a JSON object."""
    rows = []
    for number, line in enumerate(_read_text(path, "metadata.jsonl").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise UserInputError(f"metadata.jsonl line {number} is not JSON: {str(exc)[:200]}") from None
        if not isinstance(row, dict):
            raise UserInputError(
                f"metadata.jsonl line {number} is a JSON {type(row).__name__}; each line must be an object"
            )
        rows.append((number, row))
    return rows


def _csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    """metadata.csv's columns and rows."""
    reader = csv.DictReader(io.StringIO(_read_text(path, "metadata.csv"), newline=""))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise UserInputError(f"metadata.csv is not valid CSV: {exc}") from None


def _read_caption_tables(root: Path) -> dict[str, str]:
    """Captions from metadata.jsonl / metadata.csv / prompts.txt+videos.txt, keyed by relative path."""
    captions: dict[str, str] = {}

    def pick(row: dict, columns: tuple[str, ...]) -> str | None:
        for column in columns:
            if row.get(column) is not None:
                return str(row[column])
        return None

    jsonl = root / "metadata.jsonl"
    if jsonl.is_file():
        for number, row in _json_rows(jsonl):
            file, text = pick(row, FILE_COLUMNS), pick(row, CAPTION_COLUMNS)
            if file is None or text is None:
                raise UserInputError(
                    f"metadata.jsonl line {number} needs a file column ({'/'.join(FILE_COLUMNS)}) "
                    f"and a caption column ({'/'.join(CAPTION_COLUMNS)})"
                )
            captions[file] = text
    table = root / "metadata.csv"
    if table.is_file():
        columns, csv_rows = _csv_rows(table)
        if not any(c in columns for c in FILE_COLUMNS) or not any(c in columns for c in CAPTION_COLUMNS):
            raise UserInputError(f"metadata.csv has columns {columns}; it needs a file column and a caption column")
        for row in csv_rows:
            captions[pick(row, FILE_COLUMNS) or ""] = pick(row, CAPTION_COLUMNS) or ""
    prompts, videos = root / "prompts.txt", root / "videos.txt"
    if prompts.is_file() and videos.is_file():
        p_lines = _read_text(prompts, "prompts.txt").splitlines()
        v_lines = [v for v in _read_text(videos, "videos.txt").splitlines() if v.strip()]
        if len(p_lines) < len(v_lines):
            raise UserInputError(f"prompts.txt has {len(p_lines)} lines but videos.txt lists {len(v_lines)} videos")
        captions.update({v.strip(): p for v, p in zip(v_lines, p_lines)})
    return captions


RIGHTS_COLUMNS = ("license", "consent")


def _read_rights_tables(root: Path) -> dict[str, dict[str, str]]:
    """Per-file `license` / `consent` declarations from metadata.jsonl or metadata.csv, where given."""
    rights: dict[str, dict[str, str]] = {}
    jsonl, table = root / "metadata.jsonl", root / "metadata.csv"
    rows: list[dict] = []
    if jsonl.is_file():
        rows += [row for _, row in _json_rows(jsonl)]
    if table.is_file():
        rows += _csv_rows(table)[1]
    for row in rows:
        file = next((str(row[c]) for c in FILE_COLUMNS if row.get(c) is not None), None)
        declared = {c: str(row[c]).strip() for c in RIGHTS_COLUMNS if row.get(c) not in (None, "")}
        if file is not None and declared:
            rights[file] = declared
    return rights


def _looks_like_video(path: Path) -> bool:
    """Container magic: MP4/MOV `ftyp`, Matroska/WebM EBML, AVI RIFF."""
    with open(path, "rb") as handle:
        head = handle.read(12)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or head[:4] == b"RIFF"
    )


def inventory_folder(root: Path, requirements: FootageRequirements) -> FootageInventory:
    """Validate every file under `root` (already extracted) against `requirements`."""
    inventory = FootageInventory(root)
    table = _read_caption_tables(root)  # raises on malformed tables, before rights are read
    rights = _read_rights_tables(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    video_rel = {p.relative_to(root).as_posix() for p in videos}
    sidecars_used: set[Path] = set()
    seen_hashes: dict[str, str] = {}
    videos_checked = 0
    for path in videos:
        rel = path.relative_to(root).as_posix()
        sidecar = path.with_suffix(".txt")
        caption = table.get(rel, table.get(path.name))
        if sidecar.is_file():
            sidecars_used.add(sidecar)  # metadata tables win over sidecars when both exist
            if caption is None:
                try:
                    caption = sidecar.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    inventory.rejected.append(
                        RejectedFile(rel, RejectReason.CAPTION_NOT_UTF8, f"{sidecar.name} is not UTF-8 text")
                    )
                    continue
        if path.stat().st_size > requirements.max_file_bytes:
            size = path.stat().st_size
            inventory.rejected.append(
                RejectedFile(rel, RejectReason.FILE_TOO_LARGE, f"{size} bytes; at most {requirements.max_file_bytes}")
            )
            continue
        if videos_checked >= requirements.max_videos:
            inventory.rejected.append(
                RejectedFile(rel, RejectReason.TOO_MANY_FILES, f"only the first {requirements.max_videos} are checked")
            )
            continue
        videos_checked += 1
        try:
            probe = probe_video(path)  # container facts and one frame: nothing is decoded whole
        except VideoDecodeError as exc:
            reason = (
                RejectReason.UNREADABLE if path.stat().st_size and _looks_like_video(path) else RejectReason.NOT_A_VIDEO
            )
            inventory.rejected.append(RejectedFile(rel, reason, exc.reason))
            continue
        if caption is None:
            inventory.rejected.append(
                RejectedFile(rel, RejectReason.NO_CAPTION, "no sidecar .txt and no metadata entry")
            )
            continue
        if not caption.strip():
            inventory.rejected.append(RejectedFile(rel, RejectReason.EMPTY_CAPTION))
            continue
        frames = int(probe.duration_s * requirements.fps + 1e-6)
        width, height = probe.display_width, probe.display_height
        refusal = None
        if probe.duration_s > requirements.max_duration_s:
            refusal = (RejectReason.TOO_LONG, f"{probe.duration_s:.1f} s; at most {requirements.max_duration_s:g} s")
        elif probe.pixels > requirements.max_pixels:
            refusal = (RejectReason.TOO_MANY_PIXELS, f"{width}x{height}; at most {requirements.max_pixels} pixels")
        elif frames < requirements.min_frames:
            refusal = (
                RejectReason.TOO_SHORT,
                f"{frames} frames at {requirements.fps:g} fps; needs {requirements.min_frames}",
            )
        elif width < requirements.min_width or height < requirements.min_height:
            refusal = (
                RejectReason.TOO_SMALL,
                f"{width}x{height}; needs {requirements.min_width}x{requirements.min_height}",
            )
        if refusal is not None:
            inventory.rejected.append(RejectedFile(rel, *refusal))
            continue
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()  # streamed: videos can be GBs
        if digest in seen_hashes:
            inventory.rejected.append(RejectedFile(rel, RejectReason.DUPLICATE, f"same bytes as {seen_hashes[digest]}"))
            continue
        seen_hashes[digest] = rel
        faces = None
        if requirements.scan_faces:
            try:
                faces = shared_detector().scan_file(path, probe).to_dict()
            except VideoDecodeError as exc:  # the first frame decoded, a later one does not: a truncated file
                inventory.rejected.append(RejectedFile(rel, RejectReason.UNREADABLE, exc.reason))
                continue
        declared = rights.get(rel, rights.get(path.name, {}))
        inventory.accepted.append(
            AcceptedVideo(
                rel,
                caption.strip(),
                digest,
                frames,
                width,
                height,
                declared.get("license"),
                declared.get("consent"),
                round(probe.duration_s, 3),
                probe.to_dict(),
                faces,
            )
        )
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path in videos or path in sidecars_used or (path.parent == root and path.name in CAPTION_FILES):
            continue
        if path.suffix.lower() == ".txt":  # every video's sidecar was consumed above
            inventory.rejected.append(RejectedFile(rel, RejectReason.CAPTION_WITHOUT_VIDEO))
        else:
            inventory.rejected.append(
                RejectedFile(rel, RejectReason.NOT_A_VIDEO, f"extension {path.suffix or '(none)'} is not a video")
            )
    for rel in table:
        if rel not in video_rel and not any(v.endswith("/" + rel) or v == rel for v in video_rel):
            inventory.rejected.append(
                RejectedFile(rel, RejectReason.CAPTION_WITHOUT_VIDEO, "listed in a caption file, not found")
            )
    return inventory


def inventory_source(source: Path, work_dir: Path, requirements: FootageRequirements) -> FootageInventory:
    """Folder or archive -> inventory; archives are extracted safely under `work_dir` first."""
    if not source.exists():
        raise UserInputError(f"footage source {source} does not exist")
    if source.is_dir():
        return inventory_folder(source, requirements)
    if not source.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise UserInputError(f"footage source {source} is neither a folder nor a {', '.join(ARCHIVE_SUFFIXES)} archive")
    dest = work_dir / "extracted"
    try:
        refused = extract_archive(source, dest, requirements.archive)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise UserInputError(f"archive {source} is unreadable: {exc}") from exc
    inventory = inventory_folder(dest, requirements)
    inventory.rejected.extend(refused)
    return inventory
