"""Continuation runs: `--set KEY=VALUE` parsed by the config field's type, and the card's record of each run."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest

from reelforge.models.tiny.continuation import parse_field_value, save_continued
from reelforge.models.tiny.first_frame_training import FirstFrameTrainingConfig
from reelforge.models.tiny.random_pipeline import (
    MODEL_CARD_CONFIG,
    TinyWanConfig,
    build_random_wan_pipeline,
)

KEY = "first_frame_training"


@pytest.mark.parametrize(
    ("text", "expected"), [("false", False), ("False", False), ("0", False), ("no", False), ("true", True), ("1", True)]
)
def test_booleans_are_read_by_their_words(text: str, expected: bool):
    assert parse_field_value(bool, text) is expected


def test_a_word_that_is_not_a_boolean_is_refused():
    with pytest.raises(ValueError):
        parse_field_value(bool, "maybe")


def test_numbers_keep_their_type():
    assert parse_field_value(int, "5000") == 5000
    assert parse_field_value(float, "3e-4") == pytest.approx(3e-4)


def test_running_a_continuation_twice_keeps_the_record_of_both_runs(tmp_path):
    config = TinyWanConfig.for_tests()
    pipeline = build_random_wan_pipeline(config)
    first = FirstFrameTrainingConfig(steps=3000)
    second = FirstFrameTrainingConfig(steps=5000, train_text_encoder=False)
    out = save_continued(pipeline, tmp_path / "a", config.defaults, {"name": "m"}, KEY, first, time.perf_counter())
    card = json.loads((out / MODEL_CARD_CONFIG).read_text())
    out = save_continued(pipeline, tmp_path / "b", config.defaults, card, KEY, second, time.perf_counter())
    card = json.loads((out / MODEL_CARD_CONFIG).read_text())
    assert card[KEY] == asdict(second)  # the latest run's settings
    assert [run["config"] for run in card["continuations"]] == [asdict(first), asdict(second)]
    assert card["first_frame_seconds"] == pytest.approx(sum(run["seconds"] for run in card["continuations"]))
