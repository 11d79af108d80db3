"""Teaching reelforge-tiny Chinese prompts: the vocabulary grows without moving English, and only Chinese rows train."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from reelforge.models.tiny.chinese_caption_training import (
    ChineseCaptionTrainingConfig,
    add_chinese_vocabulary,
    continue_training,
)
from reelforge.models.tiny.random_pipeline import TinyWanConfig, build_random_wan_pipeline, save_model_dir
from reelforge.models.tiny.vocabulary import EOS, PAD, UNK, caption_vocabulary, english_vocabulary_size


def _english_only(pipeline) -> None:
    """Turn a random pipeline into one like the first shipped weights: English vocabulary, English rows."""
    english = english_vocabulary_size()
    vocab = dict(list(caption_vocabulary().items())[:english])
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    pipeline.tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, unk_token=UNK
    )
    pipeline.text_encoder.resize_token_embeddings(english)


def test_chinese_rows_start_from_their_english_words():
    pipeline = build_random_wan_pipeline(TinyWanConfig.for_tests(), seed=0)
    _english_only(pipeline)
    english_rows = pipeline.text_encoder.get_input_embeddings().weight.detach().clone()  # (39, D)
    vocab = caption_vocabulary()

    assert add_chinese_vocabulary(pipeline) == english_vocabulary_size()

    weight = pipeline.text_encoder.get_input_embeddings().weight  # (73, D)
    assert weight.shape[0] == len(vocab) == len(pipeline.tokenizer)
    assert torch.equal(weight[: english_rows.shape[0]], english_rows)
    assert torch.equal(weight[vocab["红色"]], english_rows[vocab["red"]])
    assert torch.equal(weight[vocab["向左"]], english_rows[vocab["left"]])
    assert torch.equal(weight[vocab["的"]], english_rows.mean(dim=0))


def test_a_base_with_another_vocabulary_is_refused():
    pipeline = build_random_wan_pipeline(TinyWanConfig.for_tests(), seed=0)
    _english_only(pipeline)
    pipeline.tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab={UNK: 0, "cat": 1}, unk_token=UNK)), unk_token=UNK
    )
    with pytest.raises(ValueError, match="English vocabulary"):
        add_chinese_vocabulary(pipeline)


@pytest.mark.slow
def test_training_moves_only_chinese_rows_and_resumes(tmp_path: Path):
    config = TinyWanConfig.for_tests()
    pipeline = build_random_wan_pipeline(config, seed=0)
    _english_only(pipeline)
    base = save_model_dir(pipeline, tmp_path / "base", config.defaults, {"world": "shapes"})
    before_encoder = {k: v.clone() for k, v in pipeline.text_encoder.state_dict().items()}
    before_transformer = {k: v.clone() for k, v in pipeline.transformer.state_dict().items()}

    run = dict(steps=2, batch=2, latent_clips=32, checkpoint_every=1, warmup_steps=1, threads=1)
    out = continue_training(ChineseCaptionTrainingConfig(**run), base, tmp_path / "work", tmp_path / "out")
    assert torch.load(tmp_path / "work" / "chinese_rows.pt", weights_only=False)["step"] == 2
    continue_training(ChineseCaptionTrainingConfig(**{**run, "steps": 3}), base, tmp_path / "work", tmp_path / "out")
    assert torch.load(tmp_path / "work" / "chinese_rows.pt", weights_only=False)["step"] == 3

    from diffusers import WanPipeline

    trained = WanPipeline.from_pretrained(str(out), local_files_only=True)
    english = english_vocabulary_size()
    embedding = trained.text_encoder.get_input_embeddings().weight  # (73, D)
    for name, value in trained.text_encoder.state_dict().items():
        if "embed" in name or name == "shared.weight":
            assert torch.equal(value[:english], before_encoder[name][:english]), name
        else:
            assert torch.equal(value, before_encoder[name]), name
    for name, value in trained.transformer.state_dict().items():
        assert torch.equal(value, before_transformer[name]), name
    vocab = caption_vocabulary()
    started = before_encoder["shared.weight"][vocab["red"]]  # where 红色 started
    assert not torch.equal(embedding[vocab["红色"]], started)  # and it moved
    assert trained.tokenizer("一个红色的圆形").input_ids[:2] == [vocab["一个"], vocab["红色"]]
