"""An operator's decision on a video held for review (it showed a face): approve or reject, audited.

Approval makes the video downloadable and starts its retention then; rejection fails it for its
tenant with the operator's reason and leaves its files to the expiry sweep, which removes them.
The decision and its audit record are one transaction, and a video is decided once.
"""

from __future__ import annotations

import time

from reelforge.errors import NotFoundError, ReviewDecisionError, UserInputError
from reelforge.platform.stores.audit_log import VIDEO_APPROVED, VIDEO_REJECTED, AuditEvent
from reelforge.platform.stores.video_jobs import VideoJob, VideoJobStore
from reelforge.safety.output_review import HELD

MAX_NOTE_CHARS = 500


def decide(jobs: VideoJobStore, video_id: str, approve: bool, note: str, actor: str, video_ttl_s: float) -> VideoJob:
    """Approve or reject held video `video_id` as `actor`; the decided job."""
    note = " ".join(note.split())[:MAX_NOTE_CHARS]
    if not approve and not note:
        raise UserInputError("a rejection needs a reason: the tenant sees it as the video's error", param="reason")
    job = jobs.peek(video_id)
    if job is None or job.deleted:
        raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
    if job.review != HELD:
        state = f"was already {job.review}" if job.review else "was never held for review"
        raise ReviewDecisionError(f"video {video_id} {state}")
    audit = AuditEvent(
        tenant=job.tenant,
        actor=actor,
        action=VIDEO_APPROVED if approve else VIDEO_REJECTED,
        subject=video_id,
        details={"note": note, "held": job.review_note},
    )
    decided = jobs.decide_review(video_id, approve, note or "approved", time.time() + video_ttl_s, records=[audit])
    if decided is None:  # another operator decided it between the read and now
        raise ReviewDecisionError(f"video {video_id} was decided by someone else meanwhile")
    return decided
