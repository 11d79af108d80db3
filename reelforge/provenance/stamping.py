"""Stamping a generated video with every mark it carries, in one place for the API and the CLI.

In order: the visible AI-content label is drawn on the opening frames, the invisible watermark is
embedded over them (so it reads with the label on), the MP4 is encoded with the `AIGC` metadata,
and a C2PA manifest is signed over the result. `ProvenanceStamper` runs on generator replicas and
in `reelforge generate`; `verification.verify_video` checks the same marks, and both take the
serve config's `provenance` section, so they agree on the key, the trust anchor and the labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reelforge.models.video_io import Video, mp4_bytes
from reelforge.platform.stores.watermarks import WatermarkRegistry
from reelforge.provenance.aigc_metadata import aigc_metadata
from reelforge.provenance.config import ProvenanceSection
from reelforge.provenance.explicit_label import draw_label
from reelforge.provenance.manifest import GenerationClaims, sign_mp4
from reelforge.provenance.signing_keys import (
    DEV_DIR,
    SigningCredentials,
    development_credentials,
    load_credentials,
    watermark_key,
)
from reelforge.provenance.watermark import embed_watermark
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


@dataclass(frozen=True)
class StampedVideo:
    """A stamped video: its MP4 bytes, its frames as stamped (for thumbnails), and its watermark id."""

    mp4: bytes
    video: Video
    watermark_id: int | None
    labelled: bool


class ProvenanceStamper:
    """Labels, watermarks, encodes and signs the videos one generator replica (or the CLI) makes."""

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

    def stamp(self, video: Video, claims: GenerationClaims, unlabelled: bool = False) -> StampedVideo:
        """Every mark on `video`: label, watermark, `AIGC` metadata and C2PA; `unlabelled` leaves out the labels.

        The claims' watermark id is filled in here, once the watermark is issued.
        """
        policy = self.section.labels.policy_for(claims.tenant)
        labelled = self.section.labels.enabled and policy.enabled and not unlabelled
        frames = draw_label(video.frames, video.fps, policy.explicit) if labelled else video.frames
        frames, watermark_id = self.watermark(frames, claims.request_id, claims.tenant)
        stamped = Video(frames, video.fps)
        metadata = aigc_metadata(policy.implicit, claims.request_id) if labelled else None
        mp4 = self.sign(mp4_bytes(stamped, metadata), replace(claims, watermark_id=watermark_id))
        return StampedVideo(mp4, stamped, watermark_id, labelled)
