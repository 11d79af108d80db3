"""Learning-rate schedules as pure functions of the step: linear warm-up, then constant, cosine or linear decay."""

from __future__ import annotations

import math

# Decay schedules end at this fraction of the peak rate rather than 0: the last steps still learn.
FINAL_LR_FRACTION = 0.1


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak learning rate before optimizer step `step` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    if schedule == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "linear":
        shape = 1.0 - progress
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected constant, cosine or linear")
    return FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * shape
