"""Resolving model names to local directories; nothing is ever downloaded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reelforge.errors import CheckpointNotFoundError, UnknownModelError
from reelforge.models.presets import (
    EMBEDDED_MODEL,
    PRESETS,
    preset_statuses,
    read_model_dir_info,
    resolve_model,
)
from reelforge.settings import Settings, model_path_env_var


def test_unknown_name_lists_the_presets(settings: Settings):
    with pytest.raises(UnknownModelError) as info:
        resolve_model("sora-2", settings)
    message = str(info.value)
    assert "'sora-2'" in message
    for name in PRESETS:
        assert name in message


def test_missing_checkpoint_says_what_to_download_and_where(settings: Settings):
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_model("wan2.1-t2v-1.3b", settings)
    message = str(info.value)
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in message
    assert str(settings.models_dir / "wan2.1-t2v-1.3b") in message
    assert "REELFORGE_MODEL_PATH_WAN2_1_T2V_1_3B" in message
    assert "--model-path" in message


def test_model_path_without_model_index_is_rejected(settings: Settings, tmp_path: Path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(CheckpointNotFoundError, match="no model_index.json"):
        resolve_model("wan2.1-t2v-14b", settings, model_path=empty)


def test_preset_resolves_from_flag_env_and_home(
    settings: Settings, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    assert resolve_model("wan2.1-t2v-1.3b", settings, model_path=tiny_model_dir).path == tiny_model_dir.resolve()

    monkeypatch.setenv(model_path_env_var("wan2.1-t2v-1.3b"), str(tiny_model_dir))
    assert resolve_model("wan2.1-t2v-1.3b", Settings.from_env()).path == tiny_model_dir.resolve()

    monkeypatch.delenv(model_path_env_var("wan2.1-t2v-1.3b"))
    home_copy = settings.models_dir / "wan2.1-t2v-1.3b"
    home_copy.parent.mkdir(parents=True)
    home_copy.symlink_to(tiny_model_dir)
    resolved = resolve_model("wan2.1-t2v-1.3b", settings)
    assert resolved.preset is PRESETS["wan2.1-t2v-1.3b"]
    statuses = {s.preset.name: s for s in preset_statuses(settings)}
    assert statuses["wan2.1-t2v-1.3b"].available and not statuses["wan2.1-t2v-14b"].available


def test_a_diffusers_directory_is_accepted_as_a_name(settings: Settings, tiny_model_dir: Path):
    resolved = resolve_model(str(tiny_model_dir), settings)
    assert resolved.preset is None and resolved.path == tiny_model_dir.resolve()


def test_a_plain_directory_is_not_a_model(settings: Settings, tmp_path: Path):
    with pytest.raises(UnknownModelError, match="not a diffusers pipeline"):
        resolve_model(str(tmp_path), settings)


def test_unsupported_pipeline_class_is_named(tmp_path: Path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(UnknownModelError, match="StableDiffusionPipeline.*WanPipeline"):
        read_model_dir_info(tmp_path)


def test_missing_embedded_weights_say_how_to_rebuild(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from reelforge.models import presets

    monkeypatch.setattr(presets, "PACKAGED_TINY_DIR", tmp_path / "weights")
    with pytest.raises(CheckpointNotFoundError, match="python -m reelforge.models.tiny.pretrain"):
        resolve_model(EMBEDDED_MODEL, settings)
    assert not {s.preset.name: s for s in preset_statuses(settings)}[EMBEDDED_MODEL].available


def _weights_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.safetensors")):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def test_random_builder_is_deterministic_per_seed(tmp_path: Path):
    from reelforge.models.tiny.random_pipeline import (
        TinyWanConfig,
        build_random_wan_pipeline,
        save_model_dir,
    )

    config = TinyWanConfig.for_tests()
    a = save_model_dir(build_random_wan_pipeline(config, seed=1), tmp_path / "a", config.defaults)
    b = save_model_dir(build_random_wan_pipeline(config, seed=1), tmp_path / "b", config.defaults)
    c = save_model_dir(build_random_wan_pipeline(config, seed=2), tmp_path / "c", config.defaults)
    assert _weights_digest(a) == _weights_digest(b) != _weights_digest(c)


def test_every_preset_names_a_known_family():
    from reelforge.models.families import spec_for_architecture

    for preset in PRESETS.values():
        spec_for_architecture(preset.architecture)


def test_a_checkpoint_of_another_family_is_refused_for_a_preset(settings, tiny_model_dir):
    from reelforge.models.loading import describe_model

    with pytest.raises(UnknownModelError, match="holds a wan model, but wan2.2-ti2v-5b is a wan-ti2v model"):
        describe_model("wan2.2-ti2v-5b", settings, model_path=tiny_model_dir)
