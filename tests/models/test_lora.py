"""LoRA on the Wan transformer: attach, train a step, save in diffusers format, load by name, switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from reelforge.errors import AdapterError, InvalidLoraConfigError
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.lora import (
    ADAPTER_CARD_FILE,
    LORA_WEIGHTS_FILE,
    LoraConfig,
    activate_adapter,
    attach_lora,
    load_adapter,
    loaded_adapters,
    save_adapter,
    unload_adapter,
)
from reelforge.models.objectives import diffusion_loss
from reelforge.models.tiny.random_pipeline import (
    TinyWanConfig,
    build_random_wan_pipeline,
    save_model_dir,
)


@pytest.fixture
def probe(tiny_model: VideoModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed transformer input: noisy latents, timesteps, text states."""
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, 4, 3, 8, 8, generator=g)
    return noisy, torch.tensor([250.0, 750.0]), tiny_model.encode_text(["a red circle", "a blue square"])


def _predict(model: VideoModel, probe) -> torch.Tensor:
    with torch.no_grad():
        return model.spec.predict(model.transformer, *probe)


def _randomise_lora(model: VideoModel, seed: int) -> None:
    """Fresh LoRA B is zero (adapter is a no-op); random B makes round-trip tests meaningful."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.5)


def test_attach_freezes_the_base_and_trains_only_lora(tiny_model: VideoModel):
    params = attach_lora(tiny_model, LoraConfig(rank=4))
    trainable = [n for n, p in tiny_model.transformer.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(params) == len(trainable)
    # Wan's defaults: 2 blocks x (4 self-attention projections + 2 FFN layers), each lora_A and lora_B
    assert len(params) == 2 * (4 + 2) * 2
    assert not any(".attn2." in n for n in trainable)  # cross-attention (prompt following) stays frozen


def test_fresh_adapter_leaves_outputs_unchanged(tiny_model: VideoModel, probe):
    base = _predict(tiny_model, probe)
    attach_lora(tiny_model, LoraConfig(rank=4))
    assert torch.equal(_predict(tiny_model, probe), base)


def test_save_load_round_trip_reproduces_outputs_exactly(tiny_model: VideoModel, tiny_model_dir: Path, probe, tmp_path):
    attach_lora(tiny_model, LoraConfig(rank=4, alpha=8))  # alpha != rank: the scale must survive
    _randomise_lora(tiny_model, seed=1)
    expected = _predict(tiny_model, probe)
    adapter_dir = save_adapter(tiny_model, tmp_path / "acme", extra={"tenant": "acme"})

    fresh = load_model(str(tiny_model_dir), device="cpu")
    assert not torch.equal(_predict(fresh, probe), expected)
    load_adapter(fresh, adapter_dir, "acme")
    activate_adapter(fresh, "acme")
    assert torch.equal(_predict(fresh, probe), expected)

    card = json.loads((adapter_dir / ADAPTER_CARD_FILE).read_text())
    assert card["rank"] == 4 and card["alpha"] == 8 and card["extra"] == {"tenant": "acme"}


def test_saved_file_is_diffusers_lora_format(tiny_model: VideoModel, tmp_path: Path):
    attach_lora(tiny_model, LoraConfig(rank=2))
    path = save_adapter(tiny_model, tmp_path / "a") / LORA_WEIGHTS_FILE
    keys = list(load_file(path))
    assert keys and all(k.startswith("transformer.blocks.") for k in keys)
    assert any(k.endswith("attn1.to_q.lora_A.weight") for k in keys)
    with safe_open(path, "pt") as f:
        assert "lora_adapter_metadata" in f.metadata()  # peft config travels with the weights


def test_one_optimizer_step_makes_saved_lora_b_nonzero(tiny_model: VideoModel, probe, tmp_path: Path):
    params = attach_lora(tiny_model, LoraConfig(rank=4))
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    noisy, timesteps, text = probe
    loss = diffusion_loss(
        tiny_model.spec.predict(tiny_model.transformer, noisy, timesteps, text), torch.randn_like(noisy)
    )
    loss.backward()
    optimizer.step()
    weights = load_file(save_adapter(tiny_model, tmp_path / "a") / LORA_WEIGHTS_FILE)
    b_weights = [v for k, v in weights.items() if "lora_B" in k]
    assert b_weights and all(v.abs().sum() > 0 for v in b_weights)
    base_weights = [k for k in weights if "lora" not in k]
    assert base_weights == []  # only the adapter is saved, never the frozen base


def test_several_adapters_switch_and_unload(tiny_model: VideoModel, tiny_model_dir: Path, probe, tmp_path: Path):
    outputs, dirs = {}, {}
    for seed, name in ((1, "acme"), (2, "globex")):
        trainer_model = load_model(str(tiny_model_dir), device="cpu")
        attach_lora(trainer_model, LoraConfig(rank=4))
        _randomise_lora(trainer_model, seed)
        outputs[name] = _predict(trainer_model, probe)
        dirs[name] = save_adapter(trainer_model, tmp_path / name)
    base = _predict(tiny_model, probe)

    for name, path in dirs.items():
        load_adapter(tiny_model, path, name)
    assert sorted(loaded_adapters(tiny_model)) == ["acme", "globex"]
    for name in ("acme", "globex", "acme"):
        activate_adapter(tiny_model, name)
        assert torch.equal(_predict(tiny_model, probe), outputs[name]), name
    activate_adapter(tiny_model, None)
    assert torch.equal(_predict(tiny_model, probe), base)
    activate_adapter(tiny_model, "globex")
    assert torch.equal(_predict(tiny_model, probe), outputs["globex"])

    unload_adapter(tiny_model, "globex")
    assert loaded_adapters(tiny_model) == ["acme"]
    activate_adapter(tiny_model, "acme")
    assert torch.equal(_predict(tiny_model, probe), outputs["acme"])
    unload_adapter(tiny_model, "acme")
    assert torch.equal(_predict(tiny_model, probe), base)


def test_adapter_scale_interpolates(tiny_model: VideoModel, tiny_model_dir: Path, probe, tmp_path: Path):
    trainer_model = load_model(str(tiny_model_dir), device="cpu")
    attach_lora(trainer_model, LoraConfig(rank=4))
    _randomise_lora(trainer_model, 3)
    load_adapter(tiny_model, save_adapter(trainer_model, tmp_path / "a"), "a")
    activate_adapter(tiny_model, "a", scale=0.0)
    assert torch.allclose(
        _predict(tiny_model, probe), _predict(load_model(str(tiny_model_dir), device="cpu"), probe), atol=1e-6
    )


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"rank": 0}, "rank must be an integer between 1"),
            ({"rank": 2.5}, "rank must be an integer"),
            ({"alpha": -1.0}, "alpha must be positive"),
            ({"dropout": 1.0}, "dropout must be in"),
            ({"target_modules": ()}, "target_modules is empty"),
        ],
    )
    def test_invalid_config(self, kwargs: dict, expected: str):
        with pytest.raises(InvalidLoraConfigError, match=expected):
            LoraConfig(**kwargs)

    def test_targets_that_match_nothing(self, tiny_model: VideoModel):
        with pytest.raises(InvalidLoraConfigError, match=r"\['to_qkv'\] match no module"):
            attach_lora(tiny_model, LoraConfig(rank=4, target_modules=("to_q", "to_qkv")))
        assert loaded_adapters(tiny_model) == []  # refused before anything was attached

    def test_missing_directory_and_missing_weights(self, tiny_model: VideoModel, tmp_path: Path):
        with pytest.raises(AdapterError, match="does not exist"):
            load_adapter(tiny_model, tmp_path / "nope", "x")
        with pytest.raises(AdapterError, match=f"has no {LORA_WEIGHTS_FILE}"):
            load_adapter(tiny_model, tmp_path, "x")

    def test_duplicate_name_and_unknown_name(self, tiny_model: VideoModel, tiny_model_dir: Path, tmp_path: Path):
        trainer_model = load_model(str(tiny_model_dir), device="cpu")
        attach_lora(trainer_model, LoraConfig(rank=2))
        path = save_adapter(trainer_model, tmp_path / "a")
        load_adapter(tiny_model, path, "a")
        with pytest.raises(AdapterError, match="already loaded"):
            load_adapter(tiny_model, path, "a")
        with pytest.raises(AdapterError, match="no adapter named 'b'"):
            activate_adapter(tiny_model, "b")
        with pytest.raises(AdapterError, match="no adapter named 'b'"):
            unload_adapter(tiny_model, "b")
        for reserved in ("eval", "to", "acme.brand"):  # would shadow nn.Module methods / not an attribute name
            with pytest.raises(AdapterError, match=f"adapter name '{reserved}' is not usable"):
                load_adapter(tiny_model, path, reserved)
        assert loaded_adapters(tiny_model) == ["a"]

    def test_adapter_of_another_architecture(self, tiny_model: VideoModel, tmp_path: Path):
        trainer_model = tiny_model
        attach_lora(trainer_model, LoraConfig(rank=2))
        path = save_adapter(trainer_model, tmp_path / "a")
        card = json.loads((path / ADAPTER_CARD_FILE).read_text())
        card["architecture"] = "ltx"
        (path / ADAPTER_CARD_FILE).write_text(json.dumps(card))
        with pytest.raises(AdapterError, match="trained for a ltx model"):
            load_adapter(tiny_model, path, "other")

    def test_adapter_of_another_size_fails_cleanly(self, tiny_model: VideoModel, tmp_path: Path, probe):
        """An adapter whose shapes do not fit is refused, and the model keeps working."""
        bigger = TinyWanConfig.for_tests()
        bigger = TinyWanConfig(**{**bigger.__dict__, "head_dim": 16})
        other = load_model(
            str(save_model_dir(build_random_wan_pipeline(bigger, 0), tmp_path / "big", bigger.defaults)), device="cpu"
        )
        attach_lora(other, LoraConfig(rank=2))
        path = save_adapter(other, tmp_path / "big-adapter")
        base = _predict(tiny_model, probe)
        with pytest.raises(AdapterError, match="another checkpoint"):  # its card names the base it fits
            load_adapter(tiny_model, path, "big")
        (path / ADAPTER_CARD_FILE).unlink()  # a plain diffusers LoRA from elsewhere: only the load can tell
        with pytest.raises(AdapterError, match="does not fit"):
            load_adapter(tiny_model, path, "big")
        assert loaded_adapters(tiny_model) == []
        assert torch.equal(_predict(tiny_model, probe), base)

    def test_corrupt_weights_file(self, tiny_model: VideoModel, tmp_path: Path):
        (tmp_path / LORA_WEIGHTS_FILE).write_bytes(b"not a safetensors file")
        with pytest.raises(AdapterError, match="not a readable safetensors file"):
            load_adapter(tiny_model, tmp_path, "x")
