"""Stamping a generated video: watermark its frames, encode, sign a C2PA manifest; and verifying one.

`ProvenanceStamper` runs on generator replicas; `verify_video` is `reelforge verify`. Both take the
serve config's `provenance` section, so they agree on the watermark key and the trust anchor.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reelforge.platform.stores.watermarks import WatermarkOwner, WatermarkRegistry
from reelforge.provenance.config import ProvenanceSection
from reelforge.provenance.manifest import (
    GenerationClaims,
    ManifestReport,
    read_manifest,
    sign_mp4,
)
from reelforge.provenance.signing_keys import (
    DEV_DIR,
    SigningCredentials,
    development_credentials,
    load_credentials,
    watermark_key,
)
from reelforge.provenance.watermark import (
    WatermarkRead,
    embed_watermark,
    read_watermark,
)
from reelforge.settings import Settings

logger = logging.getLogger(__name__)


def signing_credentials(section: ProvenanceSection, settings: Settings) -> SigningCredentials:
    """The configured chain, or the home's development chain (with a warning)."""
    if section.signing_chain:
        return load_credentials(Path(section.signing_chain), Path(section.signing_key), Path(section.trust_anchor))
    logger.warning(
        "signing C2PA manifests with a development certificate under %s; configure "
        "provenance.signing_chain/signing_key/trust_anchor for production",
        settings.home / "provenance",
    )
    return development_credentials(settings.home)


def configured_watermark_key(section: ProvenanceSection, settings: Settings, create: bool = True) -> bytes:
    """The configured key file's bytes, or the home's key (made on first use when `create`)."""
    return watermark_key(settings.home, Path(section.watermark_key) if section.watermark_key else None, create)


def trust_anchor(section: ProvenanceSection, settings: Settings) -> bytes | None:
    """The root manifests are checked against: the configured one, else the home's development root if it exists."""
    if section.trust_anchor:
        return Path(section.trust_anchor).read_bytes()
    root = settings.home / DEV_DIR / "dev-credentials" / "root.pem"
    return root.read_bytes() if root.is_file() else None


class ProvenanceStamper:
    """Watermarks and signs the videos one generator replica makes."""

    def __init__(self, section: ProvenanceSection, settings: Settings) -> None:
        self.section = section
        self.registry = WatermarkRegistry(settings.resolved_database_url)
        self.key = configured_watermark_key(section, settings) if section.watermark else None
        self.credentials = signing_credentials(section, settings) if section.c2pa else None

    def watermark(self, frames: np.ndarray, video_id: str, tenant: str) -> tuple[np.ndarray, int | None]:
        """(F, H, W, 3) frames carrying a fresh id issued for `video_id`, and that id."""
        if self.key is None:
            return frames, None
        watermark_id = self.registry.issue(video_id, tenant)
        return embed_watermark(frames, self.key, watermark_id, self.section.watermark_strength), watermark_id

    def sign(self, mp4: bytes, claims: GenerationClaims) -> bytes:
        """The MP4 with its signed manifest (unchanged when C2PA is off)."""
        return sign_mp4(mp4, claims, self.credentials) if self.credentials is not None else mp4


@dataclass(frozen=True)
class VerificationReport:
    """What `reelforge verify` found in a file."""

    manifest: ManifestReport
    watermark: WatermarkRead | None
    owner: WatermarkOwner | None
    verdict: str  # verified | untrusted | watermark-only | tampered | unmarked
    reasons: list[str] = field(default_factory=list)

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
        }


def verify_video(path: Path, section: ProvenanceSection, settings: Settings) -> VerificationReport:
    """Check a file's manifest and watermark and map them back to the request that made it."""
    from reelforge.models.video_io import read_video

    data = path.read_bytes()
    anchor = trust_anchor(section, settings) if section.c2pa else None
    manifest = read_manifest(data, anchor)
    reasons: list[str] = []
    read = owner = None
    if section.watermark:
        read = read_watermark(read_video(path).frames, configured_watermark_key(section, settings, create=False))
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
    return VerificationReport(manifest, read, owner, verdict, reasons)
