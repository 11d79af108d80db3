"""The output rule of the real-person safeguard: a generated video that shows a face is either held
for an operator's decision or released at once with its AI-content labels, by the tenant's policy.

A held video is generated, metered and stored like any other, but its tenant cannot download it:
the API shows it `in_progress` at 100% with `review.status = "held"` until an operator approves it
(`reelforge review approve`: it becomes `completed`, its retention starts then) or rejects it
(`reelforge review reject`: it becomes `failed` with `rejected_in_review`, its files are removed).
Every hold and decision is an audit record.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelforge.safety.face_detection import FaceScan

HELD, APPROVED, REJECTED = "held", "approved", "rejected"
REVIEW_STATES = (HELD, APPROVED, REJECTED)


class OutputReviewPolicy(BaseModel):
    """What happens to one tenant's generated videos that show a face."""

    model_config = ConfigDict(extra="forbid")

    # hold: an operator approves or rejects each one; release: it is served at once, labelled as AI-made.
    faces: Literal["hold", "release"] = "hold"
    frames_scanned: int = Field(8, ge=1, le=64)  # evenly spaced frames of each video, the first included


class OutputReviewSection(BaseModel):
    """The operator's default policy and each tenant's own (a tenant's entry replaces the default)."""

    model_config = ConfigDict(extra="forbid")

    default: OutputReviewPolicy = OutputReviewPolicy()
    tenants: dict[str, OutputReviewPolicy] = Field(default_factory=dict)

    def policy_for(self, tenant: str) -> OutputReviewPolicy:
        return self.tenants.get(tenant, self.default)


def review_outcome(scan: FaceScan, policy: OutputReviewPolicy) -> str | None:
    """HELD when the policy holds videos with faces and the scan saw one; None: released at once."""
    return HELD if scan.shows_faces and policy.faces == "hold" else None
