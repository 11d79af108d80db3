"""What pretraining and first-frame training of reelforge-tiny keep: the transformer and text encoder,
their optimizer and EMA copies, saved atomically and resumed from one checkpoint file."""

from __future__ import annotations

import copy
from pathlib import Path

import torch


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary name, then rename: a crash mid-save keeps the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


class TransformerTrainingState:
    """Transformer (+ optionally text encoder) trained with AdamW, with EMA weights that are what ships."""

    def __init__(self, transformer: torch.nn.Module, text_encoder: torch.nn.Module | None, lr: float) -> None:
        # Without a text encoder only the transformer trains (the encoder stays as loaded, bit for bit).
        self.live = {"transformer": transformer} | ({"text_encoder": text_encoder} if text_encoder is not None else {})
        self.params = [p for module in self.live.values() for p in module.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=0.01)
        self.ema = {name: copy.deepcopy(module).requires_grad_(False) for name, module in self.live.items()}

    def resume(self, path: Path) -> int:
        """Load `path` if it exists; the step to continue from (0 without a checkpoint)."""
        if not path.exists():
            return 0
        state = torch.load(path, weights_only=False)
        for name, module in self.live.items():
            module.load_state_dict(state[name])
            self.ema[name].load_state_dict(state[f"ema_{name}"])
        self.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])

    def save(self, path: Path, step: int) -> None:
        """Checkpoint everything after `step` steps."""
        state = {name: module.state_dict() for name, module in self.live.items()}
        state |= {f"ema_{name}": module.state_dict() for name, module in self.ema.items()}
        save_checkpoint(path, {**state, "optimizer": self.optimizer.state_dict(), "step": step})

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, loss: torch.Tensor, ema_decay: float) -> None:
        """Backward, clip to norm 1, AdamW step, then move the EMA weights towards the live ones."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        with torch.no_grad():
            for name, live in self.live.items():
                for e, p in zip(self.ema[name].parameters(), live.parameters()):
                    e.lerp_(p, 1 - ema_decay)

    def finish(self) -> None:
        """Put the EMA weights into the live modules (what is saved as the model)."""
        for name, live in self.live.items():
            live.load_state_dict(self.ema[name].state_dict())
