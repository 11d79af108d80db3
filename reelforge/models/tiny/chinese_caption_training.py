"""Teach reelforge-tiny Chinese prompts, continuing from its shipped weights.

    python -m reelforge.models.tiny.chinese_caption_training --work-dir runs/tiny-zh --out reelforge/models/tiny/weights

The tokenizer gains the Chinese words (appended, so English ids never move) and the text encoder gains
their embedding rows, each started from its English word's row. Only those new rows train; the
transformer, the VAE and every English row stay bit-identical, so English prompts generate exactly
the same videos as before.

The objective is distillation through the frozen transformer: for a noisy training latent, the
transformer's prediction given the Chinese caption's text states must match its prediction given the
English caption's states from the untouched encoder. Matching predictions, not text states, lets the
Chinese sentence (a different length and word order) reach the same video. Half of the samples are
image-to-video (first latent frame clean, motion-only captions), so Chinese motion prompts work with
a first frame too. Checkpoints go to `--work-dir`; re-run to resume.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import WanPipeline
from tqdm import tqdm

from reelforge.models.image_conditioning import first_frame_training_inputs
from reelforge.models.objectives import FlowMatchingObjective, diffusion_loss
from reelforge.models.tiny.continuation import open_base, run_continuation, save_continued
from reelforge.models.tiny.first_frame_training import encode_clips
from reelforge.models.tiny.pretrain import encode_captions, lr_factor
from reelforge.models.tiny.random_pipeline import build_tokenizer
from reelforge.models.tiny.shapes_world import caption, motion_caption
from reelforge.models.tiny.transformer_training_state import save_checkpoint
from reelforge.models.tiny.vocabulary import CHINESE_WORDS, chinese_vocabulary_words, english_vocabulary_size

logger = logging.getLogger(__name__)

CARD_KEY = "chinese_caption_training"


@dataclass(frozen=True)
class ChineseCaptionTrainingConfig:
    """Every knob of the run; the defaults are the shipped run."""

    seed: int = 0
    steps: int = 1200
    batch: int = 32
    lr: float = 5e-3
    conditioned_fraction: float = 0.5
    warmup_steps: int = 50
    latent_clips: int = 1024
    checkpoint_every: int = 100
    threads: int = 2


class ChineseRowsTraining:
    """AdamW on the appended (Chinese) embedding rows only; every other weight of the encoder is frozen."""

    def __init__(self, text_encoder: torch.nn.Module, first_new_row: int, lr: float) -> None:
        text_encoder.requires_grad_(False)
        self.embedding = text_encoder.get_input_embeddings().weight  # (V, D)
        self.embedding.requires_grad_(True)
        keep = torch.zeros(self.embedding.shape[0], 1)
        keep[first_new_row:] = 1.0
        # Zero gradient and no weight decay leave AdamW's update at exactly 0: English rows never change.
        self.embedding.register_hook(lambda grad: grad * keep.to(grad.dtype))
        self.optimizer = torch.optim.AdamW([self.embedding], lr=lr, weight_decay=0.0)

    def resume(self, path: Path) -> int:
        """Load `path` if it exists; the step to continue from (0 without a checkpoint)."""
        if not path.exists():
            return 0
        state = torch.load(path, weights_only=False)
        with torch.no_grad():
            self.embedding.copy_(state["embedding"])
        self.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])

    def save(self, path: Path, step: int) -> None:
        """Checkpoint the rows and the optimizer after `step` steps."""
        state = {"embedding": self.embedding.detach().clone(), "optimizer": self.optimizer.state_dict(), "step": step}
        save_checkpoint(path, state)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def add_chinese_vocabulary(pipeline: WanPipeline) -> int:
    """Swap in the bilingual tokenizer and grow the encoder's embedding, Chinese rows started from English.

    Returns the first Chinese row. A base that is already bilingual keeps its rows (training continues
    them); a base whose vocabulary is neither is refused.
    """
    tokenizer = build_tokenizer()
    english = english_vocabulary_size()
    old_vocab = pipeline.tokenizer.get_vocab()
    new_vocab = tokenizer.get_vocab()
    if old_vocab == new_vocab:
        pipeline.tokenizer = tokenizer  # the current normalisation and word splitting
        return english
    if len(old_vocab) != english or any(new_vocab.get(word) != index for word, index in old_vocab.items()):
        raise ValueError(f"the base model's tokenizer is not reelforge-tiny's English vocabulary of {english} words")
    text_encoder = pipeline.text_encoder
    text_encoder.resize_token_embeddings(len(new_vocab))
    weight = text_encoder.get_input_embeddings().weight  # (V, D)
    english_mean = weight[:english].mean(dim=0)  # (D,)
    from_english = {zh: en for en, zh in CHINESE_WORDS.items()}
    with torch.no_grad():
        for word in chinese_vocabulary_words():
            source = from_english.get(word)
            weight[new_vocab[word]] = weight[old_vocab[source]] if source else english_mean
    pipeline.tokenizer = tokenizer
    return english


def _tokenize(tokenizer, texts: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = tokenizer(texts, padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")
    return tokens.input_ids, tokens.attention_mask  # (N, L) each


def train(
    config: ChineseCaptionTrainingConfig,
    pipeline: WanPipeline,
    teacher_encoder: torch.nn.Module,
    cache: dict,
    work_dir: Path,
    max_tokens: int,
) -> list[float]:
    """Distil English prompts' predictions into Chinese prompts; the per-step losses of this call."""
    ckpt = work_dir / "chinese_rows.pt"
    transformer, text_encoder = pipeline.transformer.eval(), pipeline.text_encoder.eval()
    transformer.requires_grad_(False)
    training = ChineseRowsTraining(text_encoder, english_vocabulary_size(), config.lr)
    start = training.resume(ckpt)
    if start:
        logger.info("chinese captions: resuming at step %d", start)
    losses: list[float] = []
    if start >= config.steps:
        return losses
    combos = cache["combos"]
    n = len(combos)
    # Rows 0..N-1: full captions; N..2N-1: motion-only captions (image-to-video prompts).
    english = [caption(*c) for c in combos] + [motion_caption(c[2], c[3]) for c in combos]
    chinese = [caption(*c, lang="zh") for c in combos] + [motion_caption(c[2], c[3], lang="zh") for c in combos]
    en_ids, en_mask = _tokenize(pipeline.tokenizer, english, max_tokens)
    zh_ids, zh_mask = _tokenize(pipeline.tokenizer, chinese, max_tokens)
    with torch.no_grad():
        teacher_states = torch.cat(
            [encode_captions(teacher_encoder, en_ids[i : i + 256], en_mask[i : i + 256]) for i in range(0, 2 * n, 256)]
        )  # (2N, L, D)
    latents = cache["latents"]
    objective = FlowMatchingObjective(sampling="logit_normal", shift=float(pipeline.scheduler.config.shift))
    patch = tuple(transformer.config.patch_size)
    generator = torch.Generator().manual_seed(config.seed * 1000 + start)
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="chinese", unit="step")
    for step in bar:
        training.set_lr(config.lr * lr_factor(step, config.steps, config.warmup_steps))
        b = config.batch
        index = torch.randint(0, n, (b,), generator=generator)
        conditioned = torch.rand(b, generator=generator) < config.conditioned_fraction
        row = torch.where(conditioned, index + n, index)
        x0 = latents[index]  # (B, C, F', H', W')
        eps = torch.randn(x0.shape, generator=generator)
        t = objective.sample_timesteps(b, generator)
        batch = objective.batch(x0, eps, t)
        hidden, timesteps, loss_mask = first_frame_training_inputs(
            batch.noisy, x0, batch.model_timesteps, conditioned, patch
        )
        with torch.no_grad():
            target = transformer(
                hidden_states=hidden, timestep=timesteps, encoder_hidden_states=teacher_states[row], return_dict=False
            )[0]
        student = encode_captions(text_encoder, zh_ids[row], zh_mask[row])  # (B, L, D)
        prediction = transformer(
            hidden_states=hidden, timestep=timesteps, encoder_hidden_states=student, return_dict=False
        )[0]
        loss = diffusion_loss(prediction, target, mask=loss_mask)
        training.step(loss)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.5f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            training.save(ckpt, step + 1)
    return losses


def continue_training(config: ChineseCaptionTrainingConfig, base_dir: Path, work_dir: Path, out_dir: Path) -> Path:
    """Load the model at `base_dir`, teach it Chinese captions, write the bilingual model to `out_dir`."""
    pipeline, card, defaults = open_base(config, base_dir, work_dir)
    started = time.perf_counter()
    cache = encode_clips(pipeline, config.seed, config.latent_clips, work_dir)
    teacher = copy.deepcopy(pipeline.text_encoder).eval().requires_grad_(False)
    add_chinese_vocabulary(pipeline)
    train(config, pipeline, teacher, cache, work_dir, defaults.max_text_tokens)
    pipeline.text_encoder.requires_grad_(False).eval()
    return save_continued(pipeline, out_dir, defaults, card, CARD_KEY, config, started)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m reelforge.models.tiny.chinese_caption_training --work-dir DIR --out DIR [--base DIR]`."""
    run_continuation(ChineseCaptionTrainingConfig, continue_training, __doc__, "the English model to continue", argv)


if __name__ == "__main__":
    main()
