"""The model families reelforge can load, one spec module each, found by architecture or model index."""

from __future__ import annotations

from reelforge.models.spec import VideoModelSpec
from reelforge.models.wan import WanSpec
from reelforge.models.wan_i2v import WanI2VSpec
from reelforge.models.wan_ti2v import WanTI2VSpec

SPECS: dict[str, type[VideoModelSpec]] = {spec.architecture: spec for spec in (WanSpec, WanTI2VSpec, WanI2VSpec)}


def spec_for_architecture(architecture: str) -> VideoModelSpec:
    """The spec of `architecture` (e.g. 'wan')."""
    if architecture not in SPECS:
        raise KeyError(f"no model spec for architecture {architecture!r}; known: {sorted(SPECS)}")
    return SPECS[architecture]()


def spec_for_model_index(model_index: dict) -> VideoModelSpec | None:
    """The spec of the family a diffusers `model_index.json` describes, if any."""
    for spec_class in SPECS.values():
        if spec_class.matches(model_index):
            return spec_class()
    return None


def known_pipeline_classes() -> list[str]:
    """Every diffusers pipeline class some family can load."""
    return sorted({name for spec in SPECS.values() for name in spec.pipeline_class_names})
