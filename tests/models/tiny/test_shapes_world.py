"""The shapes world's renderer, caption grammar, held-out split and brand looks."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.errors import UserInputError
from reelforge.models.tiny.brand_looks import (
    BRAND_KINDS,
    BrandLook,
    brand_region,
    parse_brand,
)
from reelforge.models.tiny.pretrain import training_combos
from reelforge.models.tiny.shapes_world import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    OBJECT_MAX,
    OBJECT_MIN,
    SHAPES,
    all_combos,
    caption,
    held_out_combos,
    motion_caption,
    render_clip,
    sample_clip_spec,
)
from reelforge.models.tiny.vocabulary import caption_vocabulary


def test_caption_grammar_and_vocabulary():
    assert caption("red", "circle", "left", "white") == "a red circle moving left on a white background"
    vocab = caption_vocabulary()
    for combo in all_combos():
        for word in caption(*combo).split():
            assert word in vocab, word


def test_chinese_caption_grammar_tokenises_to_known_words():
    from reelforge.models.tiny.random_pipeline import build_tokenizer

    assert caption("red", "circle", "left", "white", lang="zh") == "一个红色的圆形在白色背景上向左移动"
    assert motion_caption("up", "gray", lang="zh") == "在灰色背景上向上移动"
    tokenizer = build_tokenizer()
    words = tokenizer.convert_ids_to_tokens(tokenizer(caption("magenta", "square", "up", "black", lang="zh")).input_ids)
    assert words == ["一个", "品红色", "的", "正方形", "在", "黑色", "背景", "上", "向上", "移动", "</s>"]
    for combo in all_combos():
        for text in (caption(*combo, lang="zh"), motion_caption(combo[2], combo[3], lang="zh")):
            assert tokenizer.unk_token_id not in tokenizer(text).input_ids, text
    with pytest.raises(ValueError, match="language"):
        caption("red", "circle", "left", "white", lang="fr")


def test_bilingual_tokenizer_keeps_english_ids_and_folds_width():
    from reelforge.models.tiny.random_pipeline import build_tokenizer
    from reelforge.models.tiny.vocabulary import english_vocabulary_size

    tokenizer = build_tokenizer()
    vocab = caption_vocabulary()
    # English ids come first and are those of the English-only vocabulary the first weights were trained with.
    assert max(vocab[w] for w in (*COLOURS, *SHAPES, *DIRECTIONS, *BACKGROUNDS)) < english_vocabulary_size()
    assert min(vocab[w] for w in ("红色", "的", "在")) >= english_vocabulary_size()
    assert tokenizer("ＲＥＤ Circle").input_ids == tokenizer("red circle").input_ids  # full-width and case folded
    assert tokenizer.convert_ids_to_tokens(tokenizer("一个红色的猫").input_ids) == [
        "一个",
        "红色",
        "的",
        "<unk>",
        "</s>",
    ]


def test_palette_meets_the_world_rules():
    assert {"red", "green", "blue", "yellow"} <= set(COLOURS) and len(COLOURS) >= 6
    assert set(SHAPES) >= {"circle", "square", "triangle"}
    assert set(DIRECTIONS) == {"left", "right", "up", "down"}
    assert set(BACKGROUNDS) == {"white", "black", "gray"}


def test_held_out_split_is_compositional():
    held = held_out_combos(48)
    train = training_combos()
    assert len(held) == 48 and not set(held) & set(train)
    assert len(held) + len(train) == len(all_combos())
    for position in range(4):  # every single attribute value is still seen in training
        assert {c[position] for c in train} == {c[position] for c in all_combos()}
    assert held == held_out_combos(48)


@pytest.mark.parametrize("seed", range(20))
def test_object_stays_in_its_box_and_moves_the_captioned_way(seed: int):
    spec = sample_clip_spec(np.random.default_rng(seed))
    video, masks = render_clip(spec)
    assert video.frames.shape == (17, 32, 32, 3)
    ys, xs = np.nonzero(masks.max(axis=0) > 0)
    assert ys.min() >= OBJECT_MIN and ys.max() < OBJECT_MAX and xs.min() >= OBJECT_MIN and xs.max() < OBJECT_MAX
    dx, dy = DIRECTIONS[spec.direction]
    (x0, y0), (x1, y1) = spec.centre(0), spec.centre(16)
    assert np.sign(round(x1 - x0, 6)) == dx and np.sign(round(y1 - y0, 6)) == dy
    assert abs(x1 - x0) + abs(y1 - y0) >= 3  # visible motion


def test_rendering_is_deterministic_per_seed():
    a, _ = render_clip(sample_clip_spec(np.random.default_rng(3)))
    b, _ = render_clip(sample_clip_spec(np.random.default_rng(3)))
    assert np.array_equal(a.frames, b.frames)


def test_brand_regions_never_touch_the_object_box():
    box = np.zeros((32, 32), dtype=bool)
    box[OBJECT_MIN:OBJECT_MAX, OBJECT_MIN:OBJECT_MAX] = True
    for kind in BRAND_KINDS:
        region = brand_region(kind)
        assert region.any() and not (region & box).any(), kind


def test_brand_look_paints_only_its_region():
    video, _ = render_clip(sample_clip_spec(np.random.default_rng(0)))
    branded = BrandLook("lower-third", "orange").apply(video)
    region = brand_region("lower-third")
    assert np.all(branded.frames[:, region] == (255, 140, 0))
    assert np.array_equal(branded.frames[:, ~region], video.frames[:, ~region])


@pytest.mark.parametrize("text", ["sideways:orange", "border", "border:white", "border:", ""])
def test_bad_brand_spec_names_the_choices(text: str):
    with pytest.raises(UserInputError, match="KIND:COLOUR"):
        parse_brand(text)
    assert parse_brand(" Border:Teal ") == BrandLook("border", "teal")
