"""The model families reelforge can load, one spec module each, found by architecture or pipeline class."""

from __future__ import annotations

from reelforge.models.spec import VideoModelSpec
from reelforge.models.wan import WanSpec

SPECS: dict[str, type[VideoModelSpec]] = {spec.architecture: spec for spec in (WanSpec,)}


def spec_for_architecture(architecture: str) -> VideoModelSpec:
    """The spec of `architecture` (e.g. 'wan')."""
    if architecture not in SPECS:
        raise KeyError(f"no model spec for architecture {architecture!r}; known: {sorted(SPECS)}")
    return SPECS[architecture]()


def spec_for_pipeline_class(class_name: str) -> VideoModelSpec | None:
    """The spec whose family uses the diffusers pipeline class `class_name`, if any."""
    for spec_class in SPECS.values():
        if class_name in spec_class.pipeline_class_names:
            return spec_class()
    return None


def known_pipeline_classes() -> list[str]:
    """Every diffusers pipeline class some family can load."""
    return sorted(name for spec in SPECS.values() for name in spec.pipeline_class_names)
