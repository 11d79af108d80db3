"""Training objectives of video diffusion models, as pure functions.

Two families, chosen by the base model's scheduler:

* Flow matching (Wan, LTX-Video): x_t = (1 - t) x0 + t eps with t in [0, 1]; the network
  predicts the velocity v = eps - x0. Timesteps are drawn uniformly, logit-normally, or
  shifted towards high noise (SD3 / Wan's "shift").
* DDPM (epsilon or v prediction): x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, the marginal
  q(x_t | x0) = N(sqrt(abar_t) x0, (1 - abar_t) I); the loss is E ||target - pred||^2.

Every function here is deterministic given its inputs (randomness comes in through an explicit
`torch.Generator`), so the equations are unit-tested directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

TimestepSampling = Literal["uniform", "logit_normal"]
PredictionType = Literal["epsilon", "v_prediction"]


def _broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample values (B,) so they broadcast over a latent (B, C, F, H, W)."""
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1))).to(like.dtype)


# ---------------------------------------------------------------------------------------------
# Flow matching
# ---------------------------------------------------------------------------------------------


def flow_matching_noisy(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps, per sample t in [0, 1]."""
    tb = _broadcast(t, x0)  # (B, 1, 1, 1, 1)
    return (1.0 - tb) * x0 + tb * eps  # (B, C, F, H, W)


def flow_matching_target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Velocity target d x_t / d t = eps - x0."""
    return eps - x0


def flow_matching_recover(
    x_t: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert the interpolation: from x_t and a velocity, return (x0, eps)."""
    tb = _broadcast(t, x_t)
    x0 = x_t - tb * velocity
    eps = x_t + (1.0 - tb) * velocity
    return x0, eps


def sample_uniform_timesteps(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n timesteps uniform on [0, 1)."""
    return torch.rand(n, generator=generator)


def sample_logit_normal_timesteps(
    n: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n timesteps sigmoid(N(mean, std^2)): concentrates training on mid noise levels (SD3)."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator))


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Resolution shift t' = s t / (1 + (s - 1) t); s > 1 moves mass towards pure noise."""
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    return shift * t / (1.0 + (shift - 1.0) * t)


# ---------------------------------------------------------------------------------------------
# DDPM
# ---------------------------------------------------------------------------------------------


def linear_beta_schedule(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2) -> torch.Tensor:
    """The DDPM paper's linear variance schedule beta_1..beta_T."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def cosine_beta_schedule(num_timesteps: int = 1000, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule, betas clipped at 0.999."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64)
    f = torch.cos(((steps / num_timesteps) + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s)."""
    return torch.cumprod(1.0 - betas, dim=0)


def ddpm_noisy(x0: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor) -> torch.Tensor:
    """Sample of q(x_t | x0): sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, per sample abar_t."""
    a = _broadcast(abar_t, x0)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * eps  # (B, C, F, H, W)


def ddpm_target(
    x0: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor, prediction_type: PredictionType
) -> torch.Tensor:
    """What the network regresses: eps itself, or v = sqrt(abar) eps - sqrt(1 - abar) x0."""
    if prediction_type == "epsilon":
        return eps
    if prediction_type == "v_prediction":
        a = _broadcast(abar_t, x0)
        return a.sqrt() * eps - (1.0 - a).sqrt() * x0
    raise ValueError(f"unknown prediction_type {prediction_type!r}; expected 'epsilon' or 'v_prediction'")


def sample_ddpm_timesteps(n: int, num_timesteps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n integer timesteps uniform on {0, ..., T-1}."""
    return torch.randint(0, num_timesteps, (n,), generator=generator)


# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------


def diffusion_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error per sample, optionally weighted per sample, averaged over the batch.

    `mask` (broadcastable to the prediction, 1 = counts) restricts each sample's mean to the
    positions the model had to denoise, e.g. all but a given first frame.
    """
    err = (prediction.float() - target.float()).pow(2)  # (B, C, F, H, W)
    if mask is None:
        per_sample = err.flatten(1).mean(dim=1)  # (B,)
    else:
        m = mask.to(err.dtype).expand_as(err)
        per_sample = (err * m).flatten(1).sum(dim=1) / m.flatten(1).sum(dim=1).clamp_min(1.0)  # (B,)
    if weights is not None:
        per_sample = per_sample * weights.to(per_sample.dtype)
    return per_sample.mean()


# ---------------------------------------------------------------------------------------------
# Objective objects: what a trainer asks of a model family
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingBatch:
    """Network inputs and regression target for one noised batch."""

    noisy: torch.Tensor  # (B, C, F, H, W)
    target: torch.Tensor  # (B, C, F, H, W)
    model_timesteps: torch.Tensor  # (B,) in the transformer's timestep units


@dataclass(frozen=True)
class FlowMatchingObjective:
    """Rectified-flow objective with configurable timestep sampling and shift."""

    sampling: TimestepSampling = "logit_normal"
    shift: float = 1.0
    logit_mean: float = 0.0
    logit_std: float = 1.0
    num_train_timesteps: int = 1000

    def sample_timesteps(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Continuous timesteps t in [0, 1], shifted."""
        if self.sampling == "uniform":
            t = sample_uniform_timesteps(n, generator)
        elif self.sampling == "logit_normal":
            t = sample_logit_normal_timesteps(n, self.logit_mean, self.logit_std, generator)
        else:
            raise ValueError(f"unknown timestep sampling {self.sampling!r}")
        return shift_timesteps(t, self.shift)

    def batch(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> TrainingBatch:
        """Noise x0 at t and return the velocity target."""
        return TrainingBatch(
            noisy=flow_matching_noisy(x0, eps, t),
            target=flow_matching_target(x0, eps),
            model_timesteps=t * self.num_train_timesteps,
        )


@dataclass(frozen=True)
class DDPMObjective:
    """Discrete-time DDPM objective (epsilon or v prediction) over a beta schedule."""

    prediction_type: PredictionType = "epsilon"
    num_train_timesteps: int = 1000
    beta_schedule: Literal["linear", "cosine"] = "linear"

    def alphas_cumprod(self) -> torch.Tensor:
        """abar over all training timesteps."""
        if self.beta_schedule == "linear":
            betas = linear_beta_schedule(self.num_train_timesteps)
        else:
            betas = cosine_beta_schedule(self.num_train_timesteps)
        return alphas_cumprod(betas)

    def sample_timesteps(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer timesteps in {0, ..., T-1}."""
        return sample_ddpm_timesteps(n, self.num_train_timesteps, generator)

    def batch(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> TrainingBatch:
        """Noise x0 with the forward marginal at integer t and return the prediction target."""
        abar_t = self.alphas_cumprod()[t.long()]  # (B,)
        return TrainingBatch(
            noisy=ddpm_noisy(x0, eps, abar_t),
            target=ddpm_target(x0, eps, abar_t, self.prediction_type),
            model_timesteps=t.to(x0.dtype),
        )


Objective = FlowMatchingObjective | DDPMObjective
