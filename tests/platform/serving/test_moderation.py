"""Prompt moderation policies: default patterns, word-bounded terms, per-tenant policies and a
pluggable classifier loaded by import path."""

from __future__ import annotations

import pytest

from reelforge.errors import UserInputError
from reelforge.platform.config import ServeConfigError, parse_serve_config
from reelforge.platform.serving.moderation import (
    ModerationPolicy,
    PromptModerator,
    Verdict,
    refuse,
)


class KeywordClassifier:
    """A stand-in for a Llama Guard-style model: the real interface, with a rule instead of weights."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def classify(self, prompt: str) -> Verdict:
        if "election" in prompt.lower():
            return Verdict(False, f"classifier at {self.path}: political persuasion", "S13")
        return Verdict(True)


def test_default_policy_allows_ordinary_prompts_and_refuses_deepfakes():
    moderator = PromptModerator(ModerationPolicy())
    assert moderator.check("a red circle moving left on a white background").allowed
    verdict = moderator.check("a realistic DeepFake of the prime minister")
    assert not verdict.allowed and "deep" in verdict.rule and verdict.category == "blocklist"
    assert not moderator.check("naked children on a beach").allowed


def test_terms_are_whole_words_and_case_insensitive():
    moderator = PromptModerator(ModerationPolicy(blocked_terms=["gun"], blocked_patterns=[]))
    assert moderator.check("the show has begun").allowed
    assert moderator.check("a Gun on a table").rule == "blocked term 'gun'"


def test_tenant_policies_replace_the_default():
    config = parse_serve_config(
        {"moderation": {"tenants": {"acme": {"blocked_terms": ["competitor"], "blocked_patterns": []}}}}
    )
    acme = PromptModerator(config.moderation.policy_for("acme"))
    other = PromptModerator(config.moderation.policy_for("globex"))
    assert not acme.check("our competitor's logo").allowed and other.check("our competitor's logo").allowed
    assert acme.check("a deepfake").allowed and not other.check("a deepfake").allowed


def test_classifier_is_loaded_from_an_import_path():
    policy = ModerationPolicy(
        classifier="tests.platform.serving.test_moderation:KeywordClassifier", classifier_path="/models/guard"
    )
    verdict = PromptModerator(policy).check("a video about the election")
    assert (verdict.allowed, verdict.category) == (False, "S13") and "/models/guard" in verdict.rule
    error = refuse(verdict)
    assert (
        error.code == "content_policy_violation" and error.param == "prompt" and "political persuasion" in error.message
    )


def test_bad_policies_are_clear():
    with pytest.raises(ServeConfigError, match="not a valid regular expression"):
        parse_serve_config({"moderation": {"default": {"blocked_patterns": ["(unclosed"]}}})
    # Backreferences and lookaround need backtracking: refused when the config loads, not slow at run time.
    for pattern in (r"(a+)\1", r"foo(?=bar)"):
        with pytest.raises(ServeConfigError, match="RE2"):
            parse_serve_config({"moderation": {"default": {"blocked_patterns": [pattern]}}})
    with pytest.raises(UserInputError, match="cannot be imported"):
        PromptModerator(ModerationPolicy(classifier="no.such.module:Guard"))


def test_adversarial_prompts_are_checked_in_linear_time():
    """The default patterns pair two word lists with `.*`; Python's `re` backtracks quadratically on a
    long prompt full of near-misses, RE2 scans it once. Counted in matches, not timed."""
    moderator = PromptModerator(ModerationPolicy())
    near_miss = "kids " * 4000  # 20,000 characters of the first list and none of the second
    assert moderator.check(near_miss).allowed
    assert not moderator.check(near_miss + " nude").allowed
    assert moderator.check("广告 " * 1000 + "a red circle").allowed  # CJK text passes through untouched
