"""Mixture of denoising experts (Wan 2.2 A14B): one transformer for high noise, one for low noise.

The pipeline switches at a boundary timestep, `boundary_ratio * num_train_timesteps`: timesteps at
or above it go to `transformer` (the high-noise expert), those below to `transformer_2`. The
`ExpertRouter` applies that rule per sample, so the sampler needs no expert logic of its own.

Training draws one expert per micro-step from a generator every rank shares, then timesteps inside
that expert's range: every rank then runs the same expert, which ZeRO-3 needs (it gathers an
expert's parameters collectively when that expert runs), and a step holds one expert's activations.
"""

from __future__ import annotations

import torch

HIGH_NOISE, LOW_NOISE = 0, 1
EXPERT_COMPONENTS = ("transformer", "transformer_2")


def expert_index(model_timesteps: torch.Tensor, boundary: float) -> torch.Tensor:
    """Which expert denoises each sample: (B,) or per-token (B, seq) timesteps -> (B,) of 0 or 1.

    Per-token timesteps route by their largest value, the noise level of the denoised tokens.
    """
    t = model_timesteps if model_timesteps.ndim == 1 else model_timesteps.amax(dim=1)
    return (t < boundary).long()  # (B,)


def expert_timestep_range(expert: int, boundary_t: float) -> tuple[float, float]:
    """The [low, high) range of continuous timesteps t in [0, 1] that `expert` denoises."""
    return (boundary_t, 1.0 + 1e-9) if expert == HIGH_NOISE else (0.0, boundary_t)


def sample_in_range(
    draw, n: int, low: float, high: float, generator: torch.Generator | None = None, max_rounds: int = 64
) -> torch.Tensor:
    """n samples of `draw(k, generator)` restricted to [low, high), by rejection."""
    kept: list[torch.Tensor] = []
    count = 0
    for _ in range(max_rounds):
        t = draw(max(4 * n, 64), generator)
        t = t[(t >= low) & (t < high)]
        kept.append(t)
        count += t.numel()
        if count >= n:
            return torch.cat(kept)[:n]
    raise ValueError(f"the timestep distribution puts almost no mass in [{low}, {high}); widen the expert's range")


def high_noise_share(draw, boundary_t: float, samples: int = 65536) -> float:
    """The share of the timestep distribution at or above the boundary (fixed seed: same on every rank)."""
    t = draw(samples, torch.Generator().manual_seed(0))
    return float((t >= boundary_t).float().mean())


class ExpertRouter(torch.nn.Module):
    """Both experts behind one forward: each sample goes to the expert its timestep belongs to."""

    def __init__(self, high_noise: torch.nn.Module, low_noise: torch.nn.Module, boundary: float) -> None:
        super().__init__()
        self.experts = torch.nn.ModuleList([high_noise, low_noise])
        self.boundary = boundary

    @property
    def dtype(self) -> torch.dtype:
        return self.experts[0].dtype

    def enable_gradient_checkpointing(self) -> None:
        """Turn gradient checkpointing on in both experts."""
        for expert in self.experts:
            expert.enable_gradient_checkpointing()

    def forward(
        self, hidden_states: torch.Tensor, timestep: torch.Tensor, return_dict: bool = False, **kwargs
    ) -> tuple[torch.Tensor]:
        route = expert_index(timestep, self.boundary)  # (B,)
        chosen = route.unique().tolist()
        if len(chosen) == 1:
            return self.experts[chosen[0]](hidden_states=hidden_states, timestep=timestep, return_dict=False, **kwargs)
        out: torch.Tensor | None = None
        for index in chosen:
            rows = (route == index).nonzero().flatten()
            part = self.experts[index](
                hidden_states=hidden_states[rows],
                timestep=timestep[rows],
                return_dict=False,
                **{k: v[rows] if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()},
            )[0]
            if out is None:
                out = part.new_empty((hidden_states.shape[0], *part.shape[1:]))
            out[rows] = part
        return (out,)


class ExpertSchedule:
    """Which expert each training micro-step trains, and timesteps within its range.

    The expert is drawn from a generator seeded by the micro-step alone, so every rank draws the
    same one; with both experts trained, each is drawn as often as the objective's timestep
    distribution falls in its range, so the mixture trains as the un-split model would.
    """

    def __init__(self, draw, boundary_t: float, experts: tuple[int, ...], seed: int) -> None:
        self.draw, self.boundary_t, self.experts, self.seed = draw, boundary_t, experts, seed
        self.high_share = high_noise_share(draw, boundary_t) if len(experts) == 2 else None

    def expert(self, micro_step: int) -> int:
        """The expert micro-step `micro_step` trains (the same on every rank)."""
        if self.high_share is None:
            return self.experts[0]
        shared = torch.Generator().manual_seed(self.seed * 1_000_003 + micro_step)
        return HIGH_NOISE if float(torch.rand(1, generator=shared)) < self.high_share else LOW_NOISE

    def sample(self, n: int, micro_step: int, generator: torch.Generator) -> torch.Tensor:
        """n timesteps t in [0, 1] inside the range of this micro-step's expert."""
        low, high = expert_timestep_range(self.expert(micro_step), self.boundary_t)
        return sample_in_range(self.draw, n, low, high, generator)
