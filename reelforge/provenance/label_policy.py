"""The AI-content labels every generated video carries, as China's labelling measures and the
national standard GB 45438-2025 require (in force since 2025-09-01):

* an **explicit label**: visible text ("AI生成") on the opening frames for at least 2 seconds, at
  a legible size (at least 5% of the shorter side, the standard's rule for images);
* an **implicit label**: file metadata under the key `AIGC`, a JSON object naming the content
  as AI-generated, its producer and its id.

The platform's policy (`provenance.labels.default`) applies to every tenant; a tenant's entry in
`provenance.labels.tenants` overrides single fields of it (the label's text, position, duration,
size, the implicit label's fields). The standard's minimums are floors no override goes below.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FONT_PATH = Path(__file__).parent / "fonts" / "NotoSansCJKsc-Label.otf"
STANDARD_MIN_SECONDS = 2.0  # GB 45438-2025: the opening frames, for at least 2 s
STANDARD_MIN_HEIGHT_FRACTION = 0.05  # text at least 5% of the shorter side


@cache
def font_characters() -> frozenset[str]:
    """Every character the bundled label font can draw."""
    from fontTools.ttLib import TTFont

    return frozenset(chr(code) for code in TTFont(FONT_PATH, lazy=True).getBestCmap())


class ExplicitLabelPolicy(BaseModel):
    """The visible label drawn into the opening frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # hashable: label shapes are cached per policy

    text: str = Field("AI生成", min_length=1, max_length=32)
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "top-left"
    duration_s: float = Field(STANDARD_MIN_SECONDS, ge=STANDARD_MIN_SECONDS, le=600)
    min_height_fraction: float = Field(STANDARD_MIN_HEIGHT_FRACTION, ge=STANDARD_MIN_HEIGHT_FRACTION, le=0.5)
    min_height_px: int = Field(8, ge=6, le=256)  # a legibility floor for small videos, whatever 5% of them is

    @field_validator("text")
    @classmethod
    def _drawable(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the label text must not be blank")
        missing = sorted({c for c in text if c not in font_characters()})
        if missing:
            raise ValueError(
                f"the label font cannot draw {''.join(missing)!r} (it holds ASCII and the GB 2312 characters)"
            )
        return text


class ImplicitLabelPolicy(BaseModel):
    """The `AIGC` metadata fields; `ProduceID` is always the video's id, `Label` always 1 (AI-generated)."""

    model_config = ConfigDict(extra="forbid")

    content_producer: str = Field("reelforge", min_length=1, max_length=200)  # the operator's name or code
    content_propagator: str = Field("", max_length=200)
    propagate_id: str = Field("", max_length=200)
    reserved_code1: str = Field("", max_length=200)
    reserved_code2: str = Field("", max_length=200)


class LabelPolicy(BaseModel):
    """Both labels, as one tenant's videos carry them."""

    model_config = ConfigDict(extra="forbid")

    # Off only for a tenant the labelling rules do not cover (and only where `allow_unlabelled`):
    # its videos keep the watermark and C2PA, the EU AI Act's machine-readable marking.
    enabled: bool = True
    explicit: ExplicitLabelPolicy = ExplicitLabelPolicy()
    implicit: ImplicitLabelPolicy = ImplicitLabelPolicy()


def _merged(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


class LabelSection(BaseModel):
    """`provenance.labels`: on by default; the platform's policy and each tenant's overrides."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True  # both labels on every served video; off only for a deployment the rules do not cover
    allow_unlabelled: bool = False  # whether `reelforge generate --unlabelled` is honoured
    default: LabelPolicy = LabelPolicy()
    tenants: dict[str, dict[str, Any]] = Field(default_factory=dict)  # partial LabelPolicy per tenant

    @model_validator(mode="after")
    def _tenant_overrides_are_valid(self) -> LabelSection:
        for tenant in self.tenants:
            try:
                policy = self.policy_for(tenant)
            except ValueError as exc:
                raise ValueError(f"labels.tenants.{tenant}: {exc}") from None
            if not policy.enabled and not self.allow_unlabelled:
                raise ValueError(f"labels.tenants.{tenant} turns the labels off, which needs labels.allow_unlabelled")
        if not self.default.enabled and not self.allow_unlabelled:
            raise ValueError("labels.default turns the labels off, which needs labels.allow_unlabelled")
        return self

    def policy_for(self, tenant: str | None) -> LabelPolicy:
        """The platform's policy with the tenant's overrides applied."""
        override = self.tenants.get(tenant or "")
        if not override:
            return self.default
        return LabelPolicy.model_validate(_merged(self.default.model_dump(), override))
