"""Real-size Wan architectures with random weights, for speed and memory measurements on a GPU.

Random weights run exactly as fast and as large as trained ones, so Wan 2.1 1.3B's timing can be
measured without its 30 GB download. The UMT5-XXL text encoder keeps its real width and depth; its
vocabulary is our word-level one (its 256k-row embedding would only add 2 GB of lookup table).
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from transformers import UMT5Config, UMT5EncoderModel

from reelforge.models.tiny.random_pipeline import build_tokenizer

# Wan2.1-T2V-1.3B-Diffusers transformer/config.json
WAN_1_3B_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
# umt5-xxl encoder
UMT5_XXL = dict(
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu",
    dense_act_fn="gelu_new",
    is_gated_act=True,
)


def build_wan_1_3b_random(
    device: torch.device, dtype: torch.dtype, seed: int = 0, text_layers: int = 24
) -> WanPipeline:
    """Wan 2.1 T2V 1.3B (transformer, VAE, UMT5-XXL) with random weights, built directly on `device`.

    `text_layers` below 24 keeps UMT5-XXL's width but drops layers, where memory is short.
    """
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_1_3B_TRANSFORMER).to(dtype)
        vae = AutoencoderKLWan()  # the default config is Wan 2.1's VAE; kept in fp32 as in production
        text_encoder = UMT5EncoderModel(
            UMT5Config(vocab_size=len(tokenizer), **{**UMT5_XXL, "num_layers": text_layers})
        ).to(dtype)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    pipeline = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


# Wan2.2-TI2V-5B-Diffusers transformer/config.json
WAN_TI2V_5B_TRANSFORMER = dict(
    WAN_1_3B_TRANSFORMER,
    num_attention_heads=24,
    ffn_dim=14336,
    in_channels=48,
    out_channels=48,
)
# Wan2.2-TI2V-5B-Diffusers vae/config.json (latent statistics left at identity: random weights)
WAN_2_2_VAE = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    temperal_downsample=[False, True, True],
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
    latents_mean=[0.0] * 48,
    latents_std=[1.0] * 48,
)


def build_wan_ti2v_5b_random(
    device: torch.device, dtype: torch.dtype, seed: int = 0, text_layers: int = 24
) -> WanPipeline:
    """Wan 2.2 TI2V 5B (transformer, 48-channel VAE, UMT5-XXL) with random weights, built on `device`."""
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_TI2V_5B_TRANSFORMER).to(dtype)
        vae = AutoencoderKLWan(**WAN_2_2_VAE)
        text_encoder = UMT5EncoderModel(
            UMT5Config(vocab_size=len(tokenizer), **{**UMT5_XXL, "num_layers": text_layers})
        ).to(dtype)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    pipeline = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        expand_timesteps=True,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


# Wan2.2-I2V-A14B-Diffusers transformer/config.json: each of the two experts (high noise, low noise)
# is this 14B transformer; its input is the 16 noise channels plus the 20-channel first-frame condition.
WAN_A14B_I2V_EXPERT = dict(
    WAN_1_3B_TRANSFORMER,
    num_attention_heads=40,
    ffn_dim=13824,
    num_layers=40,
    in_channels=36,
    out_channels=16,
)


def build_wan_a14b_expert_random(
    device: torch.device, dtype: torch.dtype, seed: int = 0, **overrides
) -> WanTransformer3DModel:
    """One Wan 2.2 I2V-A14B expert with random weights on `device` (`overrides` shrink it for smoke runs)."""
    torch.manual_seed(seed)
    with torch.device(device):
        return WanTransformer3DModel(**{**WAN_A14B_I2V_EXPERT, **overrides}).to(dtype)
