"""Continuation runs' `--set KEY=VALUE`: values are parsed by the config field's type."""

from __future__ import annotations

import pytest

from reelforge.models.tiny.continuation import parse_field_value


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
