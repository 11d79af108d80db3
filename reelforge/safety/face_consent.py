"""The training-footage rule of the real-person safeguard: a video that shows people's faces is
trained on only with the recorded consent of the people shown.

Consent is the `consent` declaration that already exists for training rights: a column of the
footage's metadata table, or the upload's `consent` field (which applies to every video the table
leaves undeclared). The footage inventory records where each video shows faces; this module names
the videos that show faces and declare no consent, and refuses the footage naming them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reelforge.errors import ConsentRequiredError
from reelforge.safety.face_detection import shows_faces

SHOWN_FILES = 5  # files named in a refusal; the rest are counted


def video_shows_faces(video: Mapping) -> bool:
    """Whether an inventory entry (`AcceptedVideo` as a dict) was seen to show a face."""
    scan = video.get("faces") or {}
    return shows_faces(len(scan.get("face_instants_s") or []), int(scan.get("instants_scanned") or 0))


def videos_needing_consent(videos: Iterable[Mapping]) -> list[str]:
    """The files among inventory entries that show faces and declare no consent."""
    return [v["file"] for v in videos if video_shows_faces(v) and not (v.get("consent") or "").strip()]


def require_face_consent(videos: Iterable[Mapping], source: str, param: str | None = None) -> None:
    """Refuse footage whose videos show faces without a recorded consent, naming the files."""
    missing = videos_needing_consent(videos)
    if not missing:
        return
    shown = ", ".join(missing[:SHOWN_FILES])
    if len(missing) > SHOWN_FILES:
        shown += f" and {len(missing) - SHOWN_FILES} more"
    raise ConsentRequiredError(
        f"{source} has {len(missing)} video(s) showing people's faces without a recorded consent: {shown}. "
        "Record the consent of the people shown (the `consent` column of metadata.jsonl/csv, or the upload "
        "field `consent`), or remove those videos",
        param=param,
    )
