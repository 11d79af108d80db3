"""The `provenance` section of the platform config: watermark, C2PA signing and AI-content label settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reelforge.provenance.label_policy import LabelSection


class ProvenanceSection(BaseModel):
    """What every generated MP4 carries: an invisible watermark, a signed C2PA manifest (the EU AI Act's
    machine-readable marking), and the visible and metadata labels of GB 45438-2025."""

    model_config = ConfigDict(extra="forbid")

    watermark: bool = True
    watermark_strength: float = Field(0.6, gt=0, le=8)  # per-pattern amplitude in 8-bit levels (~40 dB PSNR at 0.6)
    watermark_key: str | None = None  # file of >= 16 secret bytes; default: made under <home>/provenance
    c2pa: bool = True
    # PEM files; all unset: a development chain made under <home>/provenance (not for production).
    signing_chain: str | None = None  # leaf first, then issuers
    signing_key: str | None = None
    trust_anchor: str | None = None  # the root `reelforge verify` trusts
    labels: LabelSection = LabelSection()

    @model_validator(mode="after")
    def _all_or_none(self) -> ProvenanceSection:
        given = [self.signing_chain, self.signing_key, self.trust_anchor]
        if any(given) and not all(given):
            raise ValueError(
                "give signing_chain, signing_key and trust_anchor together, or none for a development chain"
            )
        return self
