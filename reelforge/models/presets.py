"""Named model presets and how each resolves to a local diffusers-format directory.

Nothing here downloads. A real checkpoint is found, in order, at the path the user passes
(`--model-path`), at the path in its `REELFORGE_MODEL_PATH_<NAME>` variable, or under
`<REELFORGE_HOME>/models/<name>`; when none holds it, the error says what to download and where.
The embedded `reelforge-tiny` comes with the package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from reelforge.errors import CheckpointNotFoundError, UnknownModelError
from reelforge.models.families import known_pipeline_classes, spec_for_model_index
from reelforge.models.spec import ModelDefaults, VideoModelSpec
from reelforge.settings import Settings, model_path_env_var

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "reelforge-tiny"
PACKAGED_TINY_DIR = Path(__file__).parent / "tiny" / "weights"


@dataclass(frozen=True)
class ModelPreset:
    """A model users can name: its family, where it comes from and how to generate with it."""

    name: str
    architecture: str
    description: str
    source: str
    download_size: str = ""
    defaults: ModelDefaults | None = None
    embedded: bool = False


# Every 14B Wan (2.1 T2V, and both A14B experts of 2.2) runs at 720p with the same buckets.
WAN_14B_720P = ModelDefaults(
    height=720,
    width=1280,
    num_frames=81,
    fps=16.0,
    steps=50,
    guidance=5.0,
    max_text_tokens=512,
    max_height=720,
    max_width=1280,
    max_frames=129,
    buckets=((1280, 720), (720, 1280), (960, 960), (832, 480), (480, 832)),
    frame_buckets=(49, 33),  # 4k+1, as the causal VAE needs
)

PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            name=EMBEDDED_MODEL,
            architecture="wan-ti2v",
            description="Embedded Wan-architecture model of the shapes world, text- or image-to-video; runs on a laptop CPU",
            source="shipped inside the reelforge package",
            embedded=True,
        ),
        ModelPreset(
            name="wan2.1-t2v-1.3b",
            architecture="wan",
            description="Wan 2.1 text-to-video, 1.3B parameters, 480p",
            source="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            download_size="about 30 GB",
            defaults=ModelDefaults(
                height=480,
                width=832,
                num_frames=81,
                fps=16.0,
                steps=50,
                guidance=5.0,
                max_text_tokens=512,
                max_height=720,
                max_width=1280,
                max_frames=129,
                buckets=((832, 480), (480, 832), (624, 624)),
                frame_buckets=(49, 33),  # 4k+1, as the causal VAE needs
            ),
        ),
        ModelPreset(
            name="wan2.1-t2v-14b",
            architecture="wan",
            description="Wan 2.1 text-to-video, 14B parameters, 480p/720p",
            source="Wan-AI/Wan2.1-T2V-14B-Diffusers",
            download_size="about 70 GB",
            defaults=WAN_14B_720P,
        ),
        ModelPreset(
            name="wan2.2-ti2v-5b",
            architecture="wan-ti2v",
            description="Wan 2.2 text- and image-to-video, 5B parameters, 720p on one 24 GB card",
            source="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            defaults=ModelDefaults(
                height=704,
                width=1280,
                num_frames=121,
                fps=24.0,
                steps=50,
                guidance=5.0,
                max_text_tokens=512,
                max_height=1280,
                max_width=1280,
                max_frames=121,
                buckets=((1280, 704), (704, 1280), (960, 960)),
                frame_buckets=(81, 49),
            ),
        ),
        ModelPreset(
            name="wan2.2-t2v-a14b",
            architecture="wan",
            description="Wan 2.2 text-to-video, two 14B experts (high and low noise), 480p/720p",
            source="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            defaults=replace(WAN_14B_720P, steps=40, guidance=4.0, guidance_2=3.0),
        ),
        ModelPreset(
            name="wan2.2-i2v-a14b",
            architecture="wan-i2v",
            description="Wan 2.2 image-to-video, two 14B experts (high and low noise), 480p/720p",
            source="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            defaults=replace(WAN_14B_720P, steps=40, guidance=3.5, guidance_2=3.5),
        ),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to a directory on this machine."""

    name: str
    path: Path
    preset: ModelPreset | None


def is_model_dir(path: Path) -> bool:
    """A diffusers pipeline directory has a model_index.json at its root."""
    return (path / "model_index.json").is_file()


def resolve_model(name: str, settings: Settings, model_path: str | Path | None = None) -> ResolvedModel:
    """Find the local directory of preset `name`, or accept `name` itself as a directory."""
    preset = PRESETS.get(name)
    if preset is None:
        candidate = Path(name).expanduser()
        if candidate.is_dir() and is_model_dir(candidate):
            return ResolvedModel(name=str(candidate), path=candidate.resolve(), preset=None)
        if candidate.is_dir():
            raise UnknownModelError(f"{name} is a directory but not a diffusers pipeline (no model_index.json in it)")
        raise UnknownModelError(
            f"unknown model {name!r}: expected one of {', '.join(PRESETS)} or the path of a "
            "diffusers-format model directory (see `reelforge models`)"
        )
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not is_model_dir(path):
            raise CheckpointNotFoundError(
                f"--model-path {path} does not hold a diffusers-format {name} checkpoint "
                f"(no model_index.json). {_download_hint(preset, settings)}"
            )
        return ResolvedModel(name=name, path=path.resolve(), preset=preset)
    if preset.embedded:
        return ResolvedModel(name=name, path=embedded_model_dir(settings), preset=preset)
    for path in _candidate_dirs(preset, settings):
        if is_model_dir(path):
            return ResolvedModel(name=name, path=path.resolve(), preset=preset)
    raise CheckpointNotFoundError(f"{name} is not on this machine. {_download_hint(preset, settings)}")


def _candidate_dirs(preset: ModelPreset, settings: Settings) -> list[Path]:
    given = settings.model_path_for(preset.name)
    return ([given] if given else []) + [settings.models_dir / preset.name]


def _download_hint(preset: ModelPreset, settings: Settings) -> str:
    default_dir = settings.models_dir / preset.name
    size = f" ({preset.download_size})" if preset.download_size else ""
    return (
        f"Download the diffusers-format checkpoint {preset.source}{size} from the Hugging Face Hub, e.g. "
        f"`huggingface-cli download {preset.source} --local-dir {default_dir}`, and either leave it at "
        f"{default_dir}, set {model_path_env_var(preset.name)}=DIR, or pass --model-path DIR. "
        "reelforge never downloads weights at run time."
    )


def embedded_model_dir(settings: Settings) -> Path:
    """The reelforge-tiny weights shipped inside the package."""
    if is_model_dir(PACKAGED_TINY_DIR):
        return PACKAGED_TINY_DIR
    raise CheckpointNotFoundError(
        f"{EMBEDDED_MODEL}'s weights are missing from the package (expected {PACKAGED_TINY_DIR}). "
        "Reinstall reelforge, or rebuild them with "
        f"`python -m reelforge.models.tiny.pretrain --work-dir runs/tiny --out {PACKAGED_TINY_DIR}`."
    )


@dataclass(frozen=True)
class PresetStatus:
    """Whether a preset can be loaded on this machine, and from where."""

    preset: ModelPreset
    available: bool
    path: Path | None
    detail: str


def preset_statuses(settings: Settings) -> list[PresetStatus]:
    """Every preset with its availability, without loading or building anything."""
    statuses = []
    for preset in PRESETS.values():
        if preset.embedded:
            shipped = is_model_dir(PACKAGED_TINY_DIR)
            detail = "shipped with the package" if shipped else "missing from the package: reinstall reelforge"
            statuses.append(PresetStatus(preset, shipped, PACKAGED_TINY_DIR if shipped else None, detail))
            continue
        found = next((p for p in _candidate_dirs(preset, settings) if is_model_dir(p)), None)
        detail = "found" if found else f"download {preset.source} ({model_path_env_var(preset.name)})"
        statuses.append(PresetStatus(preset, found is not None, found, detail))
    return statuses


def read_model_dir_info(path: Path) -> tuple[VideoModelSpec, ModelDefaults | None]:
    """(the family's spec, defaults from reelforge.json if present) of a model directory."""
    index = json.loads((path / "model_index.json").read_text())
    class_name = index.get("_class_name", "")
    spec = spec_for_model_index(index)
    if spec is None:
        raise UnknownModelError(
            f"{path} holds a {class_name or 'unnamed'} pipeline; reelforge supports {', '.join(known_pipeline_classes())}"
        )
    card_path = path / "reelforge.json"
    defaults = None
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        if "defaults" in card:
            defaults = ModelDefaults.from_dict(card["defaults"])
    return spec, defaults
