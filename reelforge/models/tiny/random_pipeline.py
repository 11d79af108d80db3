"""Build a small Wan pipeline from configs with seeded random weights.

Used by tests (the `for_tests` sizes) and as the architecture of reelforge-tiny. Every component
is built in code (transformer, Wan VAE, UMT5 encoder, word-level tokenizer, flow-match scheduler),
so nothing is fetched from a hub, and the same seed gives bit-identical weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from reelforge.models.spec import ModelDefaults
from reelforge.models.tiny.vocabulary import EOS, PAD, UNK, caption_vocabulary, chinese_word_pattern

MODEL_CARD_CONFIG = "reelforge.json"


@dataclass(frozen=True)
class TinyWanConfig:
    """Sizes of a small Wan pipeline; `reelforge_tiny()` and `for_tests()` are the two in use."""

    # Wan VAE: len(vae_dim_mult) - 1 downsampling stages, each 2x in space.
    vae_base_dim: int = 8
    vae_dim_mult: tuple[int, ...] = (1, 2, 4)
    vae_num_res_blocks: int = 1
    vae_temporal_downsample: tuple[bool, ...] = (True, True)
    latent_channels: int = 16
    # Transformer
    num_layers: int = 6
    num_heads: int = 4
    head_dim: int = 32
    ffn_dim: int = 512
    freq_dim: int = 64
    # UMT5 text encoder
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_ff: int = 128
    # Wan 2.2 shapes: the TI2V VAE (residual blocks behind a 2x2 pixel patchify), first-frame
    # conditioning with per-token timesteps, two experts switching at a boundary, and the I2V
    # transformer's extra mask + image-latent input channels.
    vae_patch_size: int | None = None
    expand_timesteps: bool = False
    boundary_ratio: float | None = None
    image_channels: bool = False
    # Scheduler and generation defaults
    flow_shift: float = 2.0
    defaults: ModelDefaults = field(
        default_factory=lambda: ModelDefaults(
            height=32,
            width=32,
            num_frames=17,
            fps=8.0,
            steps=20,
            guidance=6.0,
            max_text_tokens=16,
            max_height=128,
            max_width=128,
            max_frames=65,
        )
    )

    @classmethod
    def reelforge_tiny(cls) -> TinyWanConfig:
        """The embedded default's architecture: 32x32 frames, 17 frames (see pretrain.py for why)."""
        return cls()

    @classmethod
    def for_tests(cls) -> TinyWanConfig:
        """Smallest sizes that exercise every code path; a forward pass takes milliseconds."""
        return cls(
            vae_base_dim=4,
            latent_channels=4,
            num_layers=2,
            num_heads=2,
            head_dim=8,
            ffn_dim=32,
            freq_dim=16,
            text_dim=16,
            text_layers=1,
            text_heads=2,
            text_ff=32,
            defaults=ModelDefaults(
                height=32,
                width=32,
                num_frames=9,
                fps=8.0,
                steps=4,
                guidance=3.0,
                max_text_tokens=12,
                max_height=128,
                max_width=128,
                max_frames=33,
            ),
        )

    @classmethod
    def for_tests_ti2v(cls) -> TinyWanConfig:
        """`for_tests` in Wan 2.2 TI2V-5B's shape: patchifying residual VAE, first-frame conditioning."""
        return replace(
            cls.for_tests(),
            vae_patch_size=2,
            vae_base_dim=8,  # residual down blocks need channels that divide evenly at every stage
            vae_dim_mult=(1, 2, 2),
            vae_temporal_downsample=(False, True),  # as Wan 2.2's VAE: the first downsampling is spatial only
            latent_channels=6,
            expand_timesteps=True,
        )

    @classmethod
    def for_tests_a14b(cls) -> TinyWanConfig:
        """`for_tests` in Wan 2.2 T2V-A14B's shape: two experts switching at 0.875 of the timesteps."""
        return replace(cls.for_tests(), boundary_ratio=0.875)

    @classmethod
    def for_tests_i2v_a14b(cls) -> TinyWanConfig:
        """`for_tests` in Wan 2.2 I2V-A14B's shape: two experts and concatenated image channels."""
        return replace(cls.for_tests(), boundary_ratio=0.9, image_channels=True)

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.vae_dim_mult) - 1) * (self.vae_patch_size or 1)

    @property
    def temporal_compression(self) -> int:
        return 2 ** sum(self.vae_temporal_downsample)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the bilingual caption vocabulary.

    NFKC folds full-width letters and compatibility forms, then text is lowercased; Chinese words are
    isolated by longest match (Chinese has no spaces between words), then the rest splits on
    whitespace and punctuation.
    """
    vocab = caption_vocabulary()
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(chinese_word_pattern()), behavior="isolated"), pre_tokenizers.Whitespace()]
    )
    tokenizer.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, unk_token=UNK)


def _random_transformer(config: TinyWanConfig, seed: int) -> WanTransformer3DModel:
    z = config.latent_channels
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=config.num_heads,
        attention_head_dim=config.head_dim,
        # An I2V transformer also reads the mask (one channel per packed frame) and the image latent.
        in_channels=2 * z + config.temporal_compression if config.image_channels else z,
        out_channels=z,
        text_dim=config.text_dim,
        freq_dim=config.freq_dim,
        ffn_dim=config.ffn_dim,
        num_layers=config.num_layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=256,
    )


def build_random_wan_pipeline(config: TinyWanConfig, seed: int = 0) -> WanPipeline | WanImageToVideoPipeline:
    """A Wan pipeline with every component built from `config` and weights drawn from `seed`."""
    tokenizer = build_tokenizer()
    z = config.latent_channels
    torch.manual_seed(seed)
    patchified = config.vae_patch_size is not None
    vae = AutoencoderKLWan(
        base_dim=config.vae_base_dim,
        z_dim=z,
        dim_mult=list(config.vae_dim_mult),
        num_res_blocks=config.vae_num_res_blocks,
        temperal_downsample=list(config.vae_temporal_downsample),
        # Wan 2.2's VAE patchifies pixels 2x2 before residual down blocks.
        is_residual=patchified,
        in_channels=3 * config.vae_patch_size**2 if patchified else 3,
        out_channels=3 * config.vae_patch_size**2 if patchified else 3,
        patch_size=config.vae_patch_size,
        # Identity normalisation until a trained VAE's latent statistics are measured.
        latents_mean=[0.0] * z,
        latents_std=[1.0] * z,
        scale_factor_spatial=config.spatial_compression,
        scale_factor_temporal=config.temporal_compression,
    )
    transformer = _random_transformer(config, seed + 1)
    transformer_2 = _random_transformer(config, seed + 3) if config.boundary_ratio is not None else None
    torch.manual_seed(seed + 2)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=config.text_dim,
            d_kv=config.text_dim // config.text_heads,
            d_ff=config.text_ff,
            num_layers=config.text_layers,
            num_heads=config.text_heads,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=config.flow_shift)
    pipeline_class = WanImageToVideoPipeline if config.image_channels else WanPipeline
    return pipeline_class(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=config.boundary_ratio,
        expand_timesteps=config.expand_timesteps,
    )


def save_model_dir(
    pipeline: WanPipeline | WanImageToVideoPipeline, path: Path, defaults: ModelDefaults, card: dict | None = None
) -> Path:
    """Write `pipeline` in diffusers format plus `reelforge.json` (generation defaults, provenance)."""
    path.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(str(path), safe_serialization=True)
    payload = {"defaults": asdict(defaults), **(card or {})}
    (path / MODEL_CARD_CONFIG).write_text(json.dumps(payload, indent=2) + "\n")
    return path
