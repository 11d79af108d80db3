"""Verifying a video: which of its four marks are present and valid, and which request made it.

`reelforge verify` reports the visible label (found in the pixels of its corner), the `AIGC`
metadata (parsed and matched to the platform's record of the video), the C2PA manifest and the
invisible watermark. The verdict sums up provenance: verified, identified by its watermark
after a re-encode, untrusted, tampered or unmarked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from reelforge.platform.stores.watermarks import WatermarkOwner, WatermarkRegistry
from reelforge.provenance.aigc_metadata import read_aigc
from reelforge.provenance.config import ProvenanceSection
from reelforge.provenance.explicit_label import detect_label
from reelforge.provenance.manifest import ManifestReport, read_manifest
from reelforge.provenance.stamping import configured_watermark_key, trust_anchor
from reelforge.provenance.watermark import WatermarkRead, read_watermark
from reelforge.settings import Settings


@dataclass(frozen=True)
class MarkStatus:
    """One mark: whether the file carries it, whether it is as the policy and the records say, and why not."""

    present: bool
    valid: bool
    problems: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VerificationReport:
    """What `reelforge verify` found in a file."""

    manifest: ManifestReport
    watermark: WatermarkRead | None
    owner: WatermarkOwner | None
    verdict: str  # verified | untrusted | watermark-only | tampered | unmarked
    reasons: list[str] = field(default_factory=list)
    marks: dict[str, MarkStatus] = field(default_factory=dict)  # explicit_label, aigc_metadata, c2pa, watermark

    @property
    def ok(self) -> bool:
        return self.verdict in ("verified", "watermark-only")

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "manifest": asdict(self.manifest),
            "watermark": asdict(self.watermark) if self.watermark else None,
            "owner": asdict(self.owner) if self.owner else None,
            "marks": {name: asdict(mark) for name, mark in self.marks.items()},
        }


def verify_video(path: Path, section: ProvenanceSection, settings: Settings) -> VerificationReport:
    """Check a file's four marks and map them back to the request that made it."""
    from reelforge.models.video_io import read_video

    data = path.read_bytes()
    video = read_video(path)
    anchor = trust_anchor(section, settings) if section.c2pa else None
    manifest = read_manifest(data, anchor)
    reasons: list[str] = []
    read = owner = None
    if section.watermark:
        read = read_watermark(video.frames, configured_watermark_key(section, settings, create=False))
        owner = WatermarkRegistry(settings.resolved_database_url).owner(read.payload_id) if read.found else None
        if read.found and owner is None:
            reasons.append(f"watermark id {read.payload_id} was not issued by this platform")
    if manifest.present and not manifest.intact:
        reasons.append(f"the C2PA manifest does not match the file ({', '.join(manifest.problems) or manifest.state})")
        verdict = "tampered"
    elif manifest.present and owner is not None and manifest.generation.get("request_id") != owner.video_id:
        reasons.append(
            f"manifest names request {manifest.generation.get('request_id')} but the watermark maps to {owner.video_id}"
        )
        verdict = "tampered"
    elif manifest.intact and (owner is not None or not section.watermark):
        verdict = "verified" if manifest.state == "Trusted" else "untrusted"
    elif owner is not None:
        reasons.append("no C2PA manifest (re-encoded or stripped); the watermark identifies the request")
        verdict = "watermark-only"
    else:
        reasons.append("no intact manifest and no watermark of this platform")
        verdict = "unmarked"
    if manifest.state == "Valid":
        reasons.append("the signing certificate does not chain to the configured trust anchor")
    marks = _marks(path, video, section, manifest, read, owner)
    return VerificationReport(manifest, read, owner, verdict, reasons, marks)


def _marks(path, video, section, manifest, read, owner) -> dict[str, MarkStatus]:
    """Each mark's status; the labels are checked against the policy of the tenant the records name."""
    record_id = owner.video_id if owner else (manifest.generation.get("request_id") if manifest.intact else None)
    tenant = owner.tenant if owner else (manifest.generation.get("tenant") if manifest.intact else None)
    policy = section.labels.policy_for(tenant)
    label = detect_label(video.frames, video.fps, policy.explicit)
    aigc = read_aigc(path, record_id, policy.implicit)
    c2pa_problems = list(manifest.problems)
    if manifest.state == "Valid":
        c2pa_problems.append("the signing certificate does not chain to the configured trust anchor")
    if not manifest.present:
        c2pa_problems.append("no C2PA manifest")
    watermark_problems = []
    if read is None:
        watermark_problems.append("watermarking is off in this config")
    elif not read.found:
        watermark_problems.append("no watermark found")
    elif owner is None:
        watermark_problems.append(f"watermark id {read.payload_id} was not issued by this platform")
    return {
        "explicit_label": MarkStatus(
            label.present,
            label.valid,
            label.problems,
            {
                "text": policy.explicit.text,
                "position": policy.explicit.position,
                "labelled_seconds": round(label.labelled_seconds, 3),
                "text_height_px": label.text_height_px,
                "text_height_fraction": round(label.text_height_fraction, 4),
            },
        ),
        "aigc_metadata": MarkStatus(aigc.present, aigc.valid, aigc.problems, {"AIGC": aigc.fields}),
        "c2pa": MarkStatus(manifest.present, manifest.state == "Trusted", c2pa_problems, {"state": manifest.state}),
        "watermark": MarkStatus(
            bool(read and read.found),
            owner is not None,
            watermark_problems,
            {"id": read.payload_id if read and read.found else None},
        ),
    }
