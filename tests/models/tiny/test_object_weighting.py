"""Object coverage on the latent grid and the loss weights built from it (pure tensor functions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reelforge.models.objectives import diffusion_loss
from reelforge.models.tiny.object_weighting import latent_object_coverage, object_loss_weights
from reelforge.models.tiny.shapes_world import all_combos, render_clip, sample_clip_spec


def test_coverage_follows_the_causal_vae_frame_groups():
    coverage = torch.zeros(1, 9, 8, 8)  # (B, F, H, W): 1 + 2 groups of 4
    coverage[0, 0, 0, 0] = 1.0  # first frame, top-left cell
    coverage[0, 3, 7, 7] = 0.5  # inside group 1, bottom-right cell
    latent = latent_object_coverage(coverage, temporal=4, spatial=4)  # (1, 1, 3, 2, 2)
    assert latent.shape == (1, 1, 3, 2, 2)
    assert latent[0, 0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert latent[0, 0, 1].tolist() == [[0.0, 0.0], [0.0, 0.5]]
    assert latent[0, 0, 2].abs().sum() == 0


def test_a_frame_count_the_vae_cannot_encode_is_refused():
    with pytest.raises(ValueError, match="10 frames"):
        latent_object_coverage(torch.zeros(1, 10, 8, 8), temporal=4, spatial=4)


def test_a_rendered_clip_covers_the_cells_where_its_object_is():
    spec = sample_clip_spec(np.random.default_rng(0), all_combos()[0])
    _, masks = render_clip(spec)
    latent = latent_object_coverage(torch.from_numpy(masks)[None].float(), temporal=4, spatial=4)
    covered = latent[0, 0] > 0  # (F', H', W')
    assert covered.any(dim=(1, 2)).all(), "every latent frame sees the object"
    assert covered.float().mean() < 0.5, "the object is a minority of the cells"


def test_weights_move_the_loss_onto_the_object():
    target = torch.zeros(1, 2, 1, 2, 2)  # (B, C, F', H', W')
    on_object = target.clone()
    on_object[..., 0, 0] = 1.0  # wrong only where the object is
    on_background = target.clone()
    on_background[..., 1, 1] = 1.0  # equally wrong, on background
    coverage = torch.zeros(1, 1, 1, 2, 2)
    coverage[..., 0, 0] = 1.0
    weights = object_loss_weights(coverage, object_weight=6.0)
    assert weights.max() == 7.0 and weights.min() == 1.0
    plain = diffusion_loss(on_object, target), diffusion_loss(on_background, target)
    assert plain[0] == plain[1]
    weighted = diffusion_loss(on_object, target, mask=weights), diffusion_loss(on_background, target, mask=weights)
    assert weighted[0] > 5 * weighted[1]


def test_zero_weight_is_the_plain_loss_and_negative_is_refused():
    coverage = torch.rand(2, 1, 3, 4, 4)
    assert torch.equal(object_loss_weights(coverage, 0.0), torch.ones_like(coverage))
    with pytest.raises(ValueError, match="object_weight"):
        object_loss_weights(coverage, -1.0)
