"""Change a trained Wan transformer's spatial patch size, keeping every block's weights (FlexiViT-style).

Only two modules depend on the patch: the patch embedding (a Conv3d whose kernel is the patch) and
`proj_out` (a Linear to `prod(patch) * out_channels` values per token). Attention, feed-forward,
norms and the timestep and text embedders see tokens of the model's width whatever a token covers,
and RoPE indexes the token grid, so they carry over unchanged.

The new patch embedding is chosen so that a token of the new size embeds exactly like the old
patch over a nearest-neighbour upsampled latent: each new kernel cell sums the old kernel cells it
covers. The new `proj_out` predicts, for each of its cells, the mean of the old outputs it covers.
The result is a warm start, not the same function: the grid has more tokens, so training continues.
"""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel


def resized_patch_embedding(weight: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """Conv3d kernel (D, C, pt, old_h, old_w) -> (D, C, pt, new_h, new_w), each new cell the sum of the old cells it covers."""
    (oh, ow), (nh, nw) = old, new
    if oh % nh or ow % nw:
        raise ValueError(f"a {new} patch must tile the {old} patch it replaces")
    d, c, pt = weight.shape[:3]
    blocks = weight.reshape(d, c, pt, nh, oh // nh, nw, ow // nw)  # (D, C, pt, nh, sh, nw, sw)
    return blocks.sum(dim=(4, 6))  # (D, C, pt, nh, nw)


def resized_proj_out(
    weight: torch.Tensor, bias: torch.Tensor, old: tuple[int, int, int], new: tuple[int, int, int], channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`proj_out` rows (pt*oh*ow*C, D) -> (pt*nh*nw*C, D): each new cell the mean of the old cells it covers.

    diffusers unpatchifies `proj_out`'s output as (pt, ph, pw, C), channels last.
    """
    (pt, oh, ow), (npt, nh, nw) = old, new
    if npt != pt or oh % nh or ow % nw:
        raise ValueError(f"a {new} patch must tile the {old} patch it replaces")
    d = weight.shape[1]
    w = weight.reshape(pt, nh, oh // nh, nw, ow // nw, channels, d).mean(dim=(2, 4))  # (pt, nh, nw, C, D)
    b = bias.reshape(pt, nh, oh // nh, nw, ow // nw, channels).mean(dim=(2, 4))  # (pt, nh, nw, C)
    return w.reshape(-1, d), b.reshape(-1)


@torch.no_grad()
def repatch_transformer(transformer: WanTransformer3DModel, spatial_patch: int) -> WanTransformer3DModel:
    """A copy of `transformer` with a `spatial_patch` x `spatial_patch` patch, warm-started from its weights."""
    old = tuple(transformer.config.patch_size)
    new = (old[0], spatial_patch, spatial_patch)
    if new == old:
        return transformer
    config = dict(transformer.config)
    config["patch_size"] = new
    resized = WanTransformer3DModel.from_config(config)
    state = {
        name: value
        for name, value in transformer.state_dict().items()
        if not name.startswith(("patch_embedding.", "proj_out."))
    }
    state["patch_embedding.weight"] = resized_patch_embedding(transformer.patch_embedding.weight, old[1:], new[1:])
    state["patch_embedding.bias"] = transformer.patch_embedding.bias.clone()
    state["proj_out.weight"], state["proj_out.bias"] = resized_proj_out(
        transformer.proj_out.weight, transformer.proj_out.bias, old, new, transformer.config.out_channels
    )
    resized.load_state_dict(state, strict=True)  # copies into the new model's parameters, in their dtype
    return resized
