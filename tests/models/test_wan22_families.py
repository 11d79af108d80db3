"""Wan 2.2 families on tiny random configs: TI2V-5B, T2V-A14B and I2V-A14B.

Each model here is the real diffusers architecture (WanTransformer3DModel, AutoencoderKLWan, UMT5,
WanPipeline / WanImageToVideoPipeline) at a few thousand parameters, built from configs. Our sampling
loop is checked against diffusers' own `__call__` on each, so the equations (per-token timesteps, the
first-frame mask, the expert switch) are diffusers', not our reading of them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import WanImageToVideoPipeline
from PIL import Image

from reelforge.errors import InvalidGenerationSettingsError, InvalidLoraConfigError
from reelforge.models.experts import ExpertRouter
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.lora import LoraConfig, activate_adapter, attach_lora, load_adapter, save_adapter
from reelforge.models.sampling import GenerationSettings, denoise, generate, resolve_settings
from reelforge.models.spec import ImageInput
from reelforge.models.tiny.random_pipeline import TinyWanConfig, build_random_wan_pipeline, save_model_dir
from reelforge.models.wan import WanSpec
from reelforge.models.wan_i2v import WanI2VSpec
from reelforge.models.wan_ti2v import WanTI2VSpec
from reelforge.platform.serving.generation_limits import ModelCapabilities, capabilities_of, check_sampling

PROMPT = "a red circle moving left on a white background"
VARIANTS = {
    "ti2v": TinyWanConfig.for_tests_ti2v,
    "a14b": TinyWanConfig.for_tests_a14b,
    "i2v_a14b": TinyWanConfig.for_tests_i2v_a14b,
}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One diffusers-format directory per Wan 2.2 variant, built once."""
    root = tmp_path_factory.mktemp("wan22")
    dirs = {}
    for name, make in VARIANTS.items():
        config = make()
        dirs[name] = save_model_dir(build_random_wan_pipeline(config, seed=0), root / name, config.defaults)
    return dirs


def _load(model_dirs: dict[str, Path], name: str) -> VideoModel:
    return load_model(str(model_dirs[name]), device="cpu")


def _image(seed: int = 0, size: int = 32) -> np.ndarray:
    """A first frame (H, W, 3) uint8: a bright square on a dark field."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 30, np.uint8)
    image[8:20, 10:22] = rng.integers(150, 255, 3, dtype=np.uint8)
    return image


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class TestSpecs:
    def test_encoders_only_leave_every_expert_out_and_encode_the_same(self, model_dirs):
        # what ingest loads: the VAE and text encoder, never the (two 14B) transformers
        pixels = torch.rand(1, 3, 9, 32, 32) * 2 - 1  # (B, 3, F, H, W)
        for name in ("ti2v", "a14b", "i2v_a14b"):
            full = _load(model_dirs, name)
            encoders = load_model(str(model_dirs[name]), device="cpu", with_denoiser=False)
            assert encoders.pipeline.transformer is None, name
            assert getattr(encoders.pipeline, "transformer_2", None) is None, name
            with torch.no_grad():
                assert torch.equal(encoders.encode_text(["a red circle"]), full.encode_text(["a red circle"])), name
                latents = encoders.spec.encode_video(encoders.pipeline, pixels)
                assert torch.equal(latents, full.spec.encode_video(full.pipeline, pixels)), name

    def test_each_variant_loads_with_its_family(self, model_dirs):
        expected = {"ti2v": WanTI2VSpec, "a14b": WanSpec, "i2v_a14b": WanI2VSpec}
        for name, spec_class in expected.items():
            model = _load(model_dirs, name)
            assert type(model.spec) is spec_class, name
        assert WanTI2VSpec.image_input is ImageInput.OPTIONAL
        assert WanI2VSpec.image_input is ImageInput.REQUIRED
        assert WanSpec.image_input is ImageInput.NONE

    @pytest.mark.parametrize(
        ("name", "shape"),
        [
            # TI2V VAE: 2x2 patchify then two 2x downsamplings (8x), one temporal (2x), 6 channels.
            ("ti2v", (6, 5, 4, 4)),
            ("a14b", (4, 3, 8, 8)),
            ("i2v_a14b", (4, 3, 8, 8)),
        ],
    )
    def test_latent_shapes_match_the_vae(self, model_dirs, name, shape):
        model = _load(model_dirs, name)
        pixels = torch.rand(1, 3, 9, 32, 32) * 2 - 1  # (B, 3, F, H, W)
        with torch.no_grad():
            latents = model.spec.encode_video(model.pipeline, pixels)
            decoded = model.spec.decode_latents(model.pipeline, latents)
        assert model.spec.latent_shape(model.pipeline, 9, 32, 32) == shape
        assert latents.shape == (1, *shape)
        assert decoded.shape == pixels.shape

    def test_i2v_condition_has_mask_and_image_channels(self, model_dirs):
        model = _load(model_dirs, "i2v_a14b")
        image = torch.rand(1, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            condition = model.spec.encode_image(model.pipeline, image, 9)
        k = model.pipeline.vae.config.scale_factor_temporal
        assert condition.shape == (1, k + 4, 3, 8, 8)
        assert model.transformer.config.in_channels == 4 + condition.shape[1]
        assert torch.equal(condition[:, :k, 0], torch.ones(1, k, 8, 8))  # frame 0 given
        assert torch.equal(condition[:, :k, 1:], torch.zeros(1, k, 2, 8, 8))  # the rest generated


class TestExperts:
    def test_router_sends_each_timestep_to_its_expert(self, model_dirs):
        model = _load(model_dirs, "a14b")
        router = model.denoiser
        assert isinstance(router, ExpertRouter)
        boundary = 0.875 * 1000
        assert router.boundary == boundary
        g = torch.Generator().manual_seed(0)
        noisy = torch.randn(2, 4, 3, 8, 8, generator=g)
        text = model.encode_text([PROMPT, PROMPT])
        t = torch.tensor([boundary, boundary - 1.0])  # at the boundary: high noise; just below: low noise
        with torch.no_grad():
            routed = model.spec.predict(router, noisy, t, text)
            high = model.spec.predict(model.pipeline.transformer, noisy, t, text)
            low = model.spec.predict(model.pipeline.transformer_2, noisy, t, text)
        torch.testing.assert_close(routed[0], high[0])
        torch.testing.assert_close(routed[1], low[1])
        assert not torch.allclose(high[1], low[1])  # the experts really differ

    def test_the_low_noise_scale_changes_only_the_low_noise_steps(self, model_dirs, tiny_model):
        model = _load(model_dirs, "a14b")
        same = resolve_settings(model, GenerationSettings(PROMPT, seed=1, steps=6, guidance=3.0, guidance_2=3.0))
        torch.testing.assert_close(denoise(model, same), denoise(model, replace(same, guidance_2=None)))
        assert not torch.allclose(denoise(model, same), denoise(model, replace(same, guidance_2=1.0)))
        with pytest.raises(InvalidGenerationSettingsError, match="guidance_2 needs a two-expert model"):
            resolve_settings(tiny_model, GenerationSettings(PROMPT, guidance_2=2.0))

    def test_sampling_runs_high_noise_steps_then_low_noise_steps(self, model_dirs):
        model = _load(model_dirs, "a14b")
        calls: list[str] = []
        for name in ("transformer", "transformer_2"):
            getattr(model.pipeline, name).register_forward_hook(lambda *_, n=name: calls.append(n))
        settings = resolve_settings(model, GenerationSettings(PROMPT, steps=8, guidance=1.0))
        scheduler_t = _timesteps(model, 8)
        denoise(model, settings)
        expected = ["transformer" if t >= 875 else "transformer_2" for t in scheduler_t]
        assert calls == expected
        assert "transformer" in calls and "transformer_2" in calls

    @pytest.mark.parametrize(("name", "guidance_2"), [("a14b", None), ("a14b", 1.5), ("i2v_a14b", 5.0), ("ti2v", None)])
    def test_our_sampling_matches_diffusers(self, model_dirs, name, guidance_2):
        """Same noise, same prompt, same scales (the low-noise expert's too): our loop and diffusers'
        `__call__` reach the same latent."""
        model = _load(model_dirs, name)
        image = _image() if model.spec.image_input is not ImageInput.NONE else None
        settings = resolve_settings(
            model, GenerationSettings(PROMPT, seed=3, steps=6, guidance=3.0, guidance_2=guidance_2, image=image)
        )
        ours = denoise(model, settings)
        kwargs = {"image": Image.fromarray(image)} if image is not None else {}
        reference = model.pipeline
        if name == "ti2v":  # diffusers runs TI2V's image-to-video through its I2V pipeline class
            parts = ("tokenizer", "text_encoder", "vae", "scheduler", "transformer")
            reference = WanImageToVideoPipeline(**{p: getattr(model.pipeline, p) for p in parts}, expand_timesteps=True)
            reference.set_progress_bar_config(disable=True)
        theirs = reference(
            prompt=PROMPT,
            negative_prompt="",
            height=settings.height,
            width=settings.width,
            num_frames=settings.num_frames,
            num_inference_steps=settings.steps,
            guidance_scale=3.0,
            **({"guidance_scale_2": guidance_2} if guidance_2 is not None else {}),
            latents=_noise(model, settings),
            output_type="latent",
            max_sequence_length=model.defaults.max_text_tokens,
            **kwargs,
        ).frames
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)

    def test_served_capabilities_say_which_models_take_guidance_2(self, model_dirs):
        """What the API checks `guidance_2` against comes from the loaded model: A14B has two experts."""
        a14b, ti2v = (_load(model_dirs, name) for name in ("a14b", "ti2v"))
        two, one = capabilities_of(a14b), capabilities_of(ti2v)
        assert (two.experts, two.default_guidance_2) == (2, a14b.defaults.guidance_2)
        assert one.experts == 1
        check_sampling(two, guidance=4.0, guidance_2=2.0)
        with pytest.raises(InvalidGenerationSettingsError) as info:
            check_sampling(one, guidance=4.0, guidance_2=2.0)
        assert info.value.param == "guidance_2"
        # The ingress caches capabilities as dicts: the expert count survives the round trip.
        assert ModelCapabilities.from_dict(two.to_dict()) == two


def _timesteps(model: VideoModel, steps: int) -> list[float]:
    import copy

    scheduler = copy.deepcopy(model.pipeline.scheduler)
    scheduler.set_timesteps(steps)
    return [float(t) for t in scheduler.timesteps]


def _noise(model: VideoModel, settings: GenerationSettings) -> torch.Tensor:
    from reelforge.models.sampling import initial_noise

    return initial_noise(model, settings)


class TestImageConditioning:
    def test_ti2v_keeps_the_first_frame_exactly(self, model_dirs):
        """The sampled latent's first frame is the image's latent, so frame 0 decodes as the image's round trip.

        (A random VAE's round trip is far from the image itself; the trained tiny model's eval measures
        first-frame PSNR against the image.)
        """
        model = _load(model_dirs, "ti2v")
        image = _image(1)
        settings = resolve_settings(model, GenerationSettings(PROMPT, steps=3, image=image))
        latents = denoise(model, settings)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1  # (1, 3, H, W)
        with torch.no_grad():
            condition = model.spec.encode_image(model.pipeline, pixels, settings.num_frames)  # (1, C, 1, H', W')
            round_trip = model.spec.decode_latents(model.pipeline, condition)  # (1, 3, 1, H, W)
        assert torch.equal(latents[:, :, :1], condition)
        other = denoise(model, resolve_settings(model, GenerationSettings(PROMPT, steps=3, image=_image(2))))
        assert not torch.equal(other[:, :, :1], condition)
        video = generate(model, settings)
        expected = ((round_trip[0, :, 0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        assert _psnr(video.frames[0], expected) > 40.0  # causal decoding: frame 0 depends on latent frame 0 only

    def test_ti2v_still_generates_from_text_alone(self, model_dirs):
        model = _load(model_dirs, "ti2v")
        video = generate(model, GenerationSettings(PROMPT, steps=2))
        assert video.frames.shape == (9, 32, 32, 3)

    def test_i2v_image_changes_the_video(self, model_dirs):
        model = _load(model_dirs, "i2v_a14b")
        a = generate(model, GenerationSettings(PROMPT, steps=2, image=_image(1)))
        b = generate(model, GenerationSettings(PROMPT, steps=2, image=_image(2)))
        assert not np.array_equal(a.frames, b.frames)

    def test_image_rules_name_the_field(self, model_dirs, tiny_model: VideoModel):
        with pytest.raises(InvalidGenerationSettingsError, match="image-to-video model: give a first-frame image"):
            resolve_settings(_load(model_dirs, "i2v_a14b"), GenerationSettings(PROMPT))
        with pytest.raises(InvalidGenerationSettingsError, match="text-to-video model and takes no image"):
            resolve_settings(tiny_model, GenerationSettings(PROMPT, image=_image()))
        with pytest.raises(InvalidGenerationSettingsError, match=r"expected \(32, 32, 3\) uint8"):
            resolve_settings(_load(model_dirs, "ti2v"), GenerationSettings(PROMPT, image=_image(size=16)))


def _probe(model: VideoModel, t: float) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(1, 4, 3, 8, 8, generator=g)
    return noisy, torch.tensor([t]), model.encode_text([PROMPT])


def _expert_outputs(model: VideoModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(high-noise expert at a high t, low-noise expert at a low t) through the router."""
    with torch.no_grad():
        high = model.spec.predict(model.denoiser, *_probe(model, 950.0))
        low = model.spec.predict(model.denoiser, *_probe(model, 200.0))
    return high, low


def _randomise_lora(model: VideoModel, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for expert in model.spec.experts(model.pipeline).values():
            for name, param in expert.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=g) * 0.5)


class TestTwoExpertLora:
    def test_an_adapter_trained_on_both_experts_loads_into_both(self, model_dirs, tmp_path: Path):
        trainer = _load(model_dirs, "a14b")
        params = attach_lora(trainer, LoraConfig(rank=4, alpha=8))
        assert {n.split(".lora_")[0] for n in _names(trainer, "transformer_2")}, "low-noise expert has no LoRA"
        assert len(params) == 2 * 2 * len(_names(trainer, "transformer"))  # A and B, in both experts
        _randomise_lora(trainer, 0)
        trained = _expert_outputs(trainer)
        adapter = save_adapter(trainer, tmp_path / "acme")

        served = _load(model_dirs, "a14b")
        base = _expert_outputs(served)
        load_adapter(served, adapter, "acme")
        activate_adapter(served, "acme")
        loaded = _expert_outputs(served)
        for expert in (0, 1):
            assert not torch.allclose(loaded[expert], base[expert]), f"expert {expert} unchanged by the adapter"
            torch.testing.assert_close(loaded[expert], trained[expert], rtol=1e-5, atol=1e-5)
        activate_adapter(served, None)
        for expert in (0, 1):
            torch.testing.assert_close(_expert_outputs(served)[expert], base[expert])

    def test_a_high_noise_only_adapter_leaves_the_low_noise_expert_alone(self, model_dirs, tmp_path: Path):
        trainer = _load(model_dirs, "a14b")
        attach_lora(trainer, LoraConfig(rank=4, experts="high_noise"))
        assert not _names(trainer, "transformer_2")
        _randomise_lora(trainer, 1)
        adapter = save_adapter(trainer, tmp_path / "high")
        served = _load(model_dirs, "a14b")
        base = _expert_outputs(served)
        load_adapter(served, adapter, "high")
        activate_adapter(served, "high")
        high, low = _expert_outputs(served)
        assert not torch.allclose(high, base[0])
        torch.testing.assert_close(low, base[1])

    def test_expert_choice_needs_two_experts(self, tiny_model: VideoModel):
        with pytest.raises(InvalidLoraConfigError, match="needs a two-expert model"):
            attach_lora(tiny_model, LoraConfig(rank=2, experts="low_noise"))
        with pytest.raises(InvalidLoraConfigError, match="lora experts must be one of"):
            LoraConfig(experts="both")  # type: ignore[arg-type]

    def test_a_two_expert_adapter_is_refused_by_a_one_expert_model(self, model_dirs, tmp_path, tiny_model):
        from reelforge.errors import AdapterError

        trainer = _load(model_dirs, "a14b")
        attach_lora(trainer, LoraConfig(rank=4))
        adapter = save_adapter(trainer, tmp_path / "two")
        with pytest.raises(AdapterError, match=r"has weights for \['transformer', 'transformer_2'\]"):
            load_adapter(tiny_model, adapter, "two")


def _names(model: VideoModel, component: str) -> list[str]:
    return [n for n, _ in getattr(model.pipeline, component).named_parameters() if "lora_A" in n]


class TestTrainingInputs:
    def test_ti2v_training_inputs_keep_conditioned_first_frames_and_mask_their_loss(self, model_dirs):
        model = _load(model_dirs, "ti2v")
        x0, noisy = torch.randn(2, 6, 5, 4, 4), torch.randn(2, 6, 5, 4, 4)
        t = torch.tensor([500.0, 500.0])
        hidden, timesteps, mask = model.spec.training_inputs(model.denoiser, noisy, x0, t, torch.tensor([True, False]))
        assert torch.equal(hidden[0, :, 0], x0[0, :, 0]) and torch.equal(hidden[1], noisy[1])
        assert timesteps.shape == (2, 5 * 2 * 2) and mask.shape == (2, 1, 5, 4, 4)
        text = model.encode_text([PROMPT, PROMPT])
        with torch.no_grad():
            prediction = model.spec.call_denoiser(model.denoiser, hidden, timesteps, text)
        assert prediction.shape == x0.shape
        none = model.spec.training_inputs(model.denoiser, noisy, x0, t, torch.tensor([False, False]))
        assert none[0] is noisy and none[2] is None

    def test_i2v_trains_on_the_cached_condition_it_generates_from(self, model_dirs):
        model = _load(model_dirs, "i2v_a14b")
        clip = torch.rand(2, 3, 9, 32, 32) * 2 - 1  # (B, 3, F, H, W): two training clips
        with torch.no_grad():
            cached = model.spec.encode_clip_condition(model.pipeline, clip)  # what ingest stores
            from_image = model.spec.encode_image(model.pipeline, clip[:, :, 0], 9)  # what generation uses
        assert torch.equal(cached, from_image)
        assert cached.shape == (2, 4 + 4, 3, 8, 8)  # mask channels + the latent of [frame 0, black...]
        noisy, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([900.0, 100.0])
        hidden, timesteps, mask = model.spec.training_inputs(
            model.denoiser, noisy, noisy, t, torch.tensor([True, True]), cached
        )
        assert torch.equal(hidden, torch.cat([noisy, cached], dim=1)) and mask is None  # loss on every frame
        assert torch.equal(timesteps, t)
        text = model.encode_text([PROMPT, PROMPT])
        with torch.no_grad():
            trained = model.spec.call_denoiser(model.denoiser, hidden, timesteps, text)
            generated = model.spec.predict(model.denoiser, noisy, t, text, from_image)
        assert torch.equal(trained, generated)  # training sees exactly what sampling feeds

    def test_i2v_held_out_loss_is_scored_from_the_clips_own_condition(self, model_dirs):
        from reelforge.jobs.ingest import LatentClip
        from reelforge.jobs.train_evaluation import eval_loss

        model = _load(model_dirs, "i2v_a14b")
        clip = torch.rand(1, 3, 9, 32, 32) * 2 - 1
        with torch.no_grad():
            latents = model.spec.encode_video(model.pipeline, clip)[0]  # (C, F', H', W')
            condition = model.spec.encode_clip_condition(model.pipeline, clip)[0]  # (k + C, F', H', W')
        text = model.encode_text([PROMPT])[0]
        own = eval_loss(model, model.denoiser, [LatentClip(latents, text, condition)], (0.3, 0.9), rank=0, world=1)
        other = eval_loss(
            model, model.denoiser, [LatentClip(latents, text, torch.zeros_like(condition))], (0.3, 0.9), 0, 1
        )
        assert set(own) == {"eval/loss", "eval/loss_t0.3", "eval/loss_t0.9"}
        assert np.isfinite(own["eval/loss"]) and own["eval/loss"] != other["eval/loss"]

    def test_families_refuse_what_they_cannot_train(self, model_dirs, tiny_model):
        x0 = torch.randn(1, 4, 3, 8, 8)
        with pytest.raises(ValueError, match="take no image"):
            tiny_model.spec.training_inputs(tiny_model.denoiser, x0, x0, torch.tensor([1.0]), torch.tensor([True]))
        assert tiny_model.spec.encode_clip_condition(tiny_model.pipeline, torch.zeros(1, 3, 9, 32, 32)) is None
        i2v = _load(model_dirs, "i2v_a14b")
        # the flag that keys the ingest cache says whether a condition is cached
        assert (tiny_model.spec.caches_clip_condition, i2v.spec.caches_clip_condition) == (False, True)
        with pytest.raises(ValueError, match="ingest the footage again"):
            i2v.spec.training_inputs(i2v.denoiser, x0, x0, torch.tensor([1.0]), torch.tensor([True]))
        condition = torch.zeros(1, 8, 3, 8, 8)
        with pytest.raises(ValueError, match="image-conditioned samples only"):
            i2v.spec.training_inputs(i2v.denoiser, x0, x0, torch.tensor([1.0]), torch.tensor([False]), condition)


def test_a_two_expert_adapter_exports_one_comfyui_file_per_expert(model_dirs, tmp_path: Path):
    from safetensors import safe_open

    from reelforge.jobs.comfyui_lora import write_comfyui_lora

    trainer = _load(model_dirs, "a14b")
    attach_lora(trainer, LoraConfig(rank=4))
    adapter = save_adapter(trainer, tmp_path / "adapter")
    first = write_comfyui_lora(adapter, tmp_path / "comfyui")
    assert first.name == "comfyui_lora_high_noise.safetensors"
    for name, expert in (("high_noise", "transformer"), ("low_noise", "transformer_2")):
        with safe_open(str(tmp_path / "comfyui" / f"comfyui_lora_{name}.safetensors"), framework="pt") as f:
            assert f.metadata()["expert"] == expert
            assert all(k.startswith("diffusion_model.blocks.") for k in f.keys())
