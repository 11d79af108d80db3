"""The `provenance` section of the platform config: watermark and C2PA signing settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ProvenanceSection(BaseModel):
    """What every generated MP4 carries: an invisible watermark and a signed C2PA manifest."""

    model_config = ConfigDict(extra="forbid")

    watermark: bool = True
    watermark_strength: float = Field(0.6, gt=0, le=8)  # per-pattern amplitude in 8-bit levels (~40 dB PSNR at 0.6)
    watermark_key: str | None = None  # file of >= 16 secret bytes; default: made under <home>/provenance
    c2pa: bool = True
    # PEM files; all unset: a development chain made under <home>/provenance (not for production).
    signing_chain: str | None = None  # leaf first, then issuers
    signing_key: str | None = None
    trust_anchor: str | None = None  # the root `reelforge verify` trusts

    @model_validator(mode="after")
    def _all_or_none(self) -> ProvenanceSection:
        given = [self.signing_chain, self.signing_key, self.trust_anchor]
        if any(given) and not all(given):
            raise ValueError(
                "give signing_chain, signing_key and trust_anchor together, or none for a development chain"
            )
        return self
