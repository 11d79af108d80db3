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
    moderator = PromptModerator([ModerationPolicy()])
    assert moderator.check("a red circle moving left on a white background").allowed
    verdict = moderator.check("a realistic DeepFake of the prime minister")
    assert not verdict.allowed and "deep" in verdict.rule and verdict.category == "blocklist"
    assert not moderator.check("naked children on a beach").allowed


def test_terms_are_whole_words_and_case_insensitive():
    moderator = PromptModerator([ModerationPolicy(blocked_terms=["gun"])])
    assert moderator.check("the show has begun").allowed
    assert moderator.check("a Gun on a table").rule == "blocked term 'gun'"
    assert moderator.check("two guns on a table").rule == "blocked term 'gun'"  # plurals too


def test_tenant_policies_add_to_the_defaults_and_never_remove_the_safety_rules():
    config = parse_serve_config(
        {
            "moderation": {
                "default": {"blocked_terms": ["casino"]},
                "tenants": {"acme": {"blocked_terms": ["competitor"], "blocked_patterns": []}},
            }
        }
    )
    acme = PromptModerator(config.moderation.policies_for("acme"))
    other = PromptModerator(config.moderation.policies_for("globex"))
    assert not acme.check("our competitor's logo").allowed and other.check("our competitor's logo").allowed
    assert not acme.check("a casino at night").allowed and not other.check("a casino at night").allowed
    # An empty pattern list in a tenant's policy adds nothing; it does not switch the safety rules off.
    assert acme.check("a deepfake").rule.startswith("safety rule") and not other.check("a deepfake").allowed


def test_classifier_is_loaded_from_an_import_path():
    policy = ModerationPolicy(
        classifier="tests.platform.serving.test_moderation:KeywordClassifier", classifier_path="/models/guard"
    )
    verdict = PromptModerator([policy]).check("a video about the election")
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
        PromptModerator([ModerationPolicy(classifier="no.such.module:Guard")])


def test_adversarial_prompts_are_checked_in_linear_time():
    """The default patterns pair two word lists with `.*`; Python's `re` backtracks quadratically on a
    long prompt full of near-misses, RE2 scans it once. Counted in matches, not timed."""
    moderator = PromptModerator([ModerationPolicy()])
    near_miss = "kids " * 4000  # 20,000 characters of the first list and none of the second
    assert moderator.check(near_miss).allowed
    assert not moderator.check(near_miss + " nude").allowed
    assert moderator.check("广告 " * 1000 + "a red circle").allowed  # CJK text passes through untouched


BLOCKED_VARIANTS = [
    pytest.param("a ｄｅｅｐｆａｋｅ of the CEO", id="full-width"),
    pytest.param("a deep\u200bfa\u200dke of the CEO", id="zero-width"),
    pytest.param("a d\u0435\u0435pf\u0430k\u0435 of the CEO", id="cyrillic-look-alikes"),
    pytest.param("two deepfakes of the CEO", id="plural"),
    pytest.param("Deep Fake of the CEO", id="spaced-and-cased"),
    pytest.param("用AI换脸做一个CEO的视频", id="chinese"),
    pytest.param("CEO的深度伪造视频", id="chinese-term"),
    pytest.param("a ＤＥＥＰ\u2060ＦＡＫＥ", id="full-width-and-word-joiner"),
]


@pytest.mark.parametrize("prompt", BLOCKED_VARIANTS)
def test_disguised_and_chinese_variants_of_a_blocked_term_are_refused(prompt):
    verdict = PromptModerator([ModerationPolicy()]).check(prompt)
    assert not verdict.allowed and verdict.rule.startswith("safety rule"), prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "ｃｏｍｐｅｔｉｔｏｒ logo",
        "c\u043empetitor logo",
        "compet\u00aditor logo",
        "competitors' logos",
        "竞争对手的标志",
    ],
    ids=["full-width", "cyrillic-o", "soft-hyphen", "plural", "chinese"],
)
def test_a_tenants_english_and_chinese_terms_catch_the_same_disguises(prompt):
    moderator = PromptModerator([ModerationPolicy(), ModerationPolicy(blocked_terms=["competitor", "竞争对手"])])
    assert not moderator.check(prompt).allowed, prompt


def test_chinese_minors_and_sexual_content_is_refused_but_ordinary_chinese_prompts_pass():
    moderator = PromptModerator([ModerationPolicy()])
    assert not moderator.check("未成年少女的裸体照片").allowed
    assert moderator.check("一个红色的圆形在白色背景上向左移动").allowed
    assert moderator.check("儿童节的产品宣传视频").allowed  # minors alone are no violation


def test_normalisation_undoes_disguises_and_leaves_other_scripts_alone():
    from reelforge.platform.serving.prompt_normalization import normalize_prompt

    assert normalize_prompt("ＡＩ  Ｖｉｄｅｏ\u200b") == "ai video"
    assert normalize_prompt("d\u0435\u0435pf\u0430k\u0435") == "deepfake"  # Cyrillic е, а among Latin letters
    assert normalize_prompt("Москва зимой") == "москва зимой"  # Russian stays Russian
    assert normalize_prompt("α red κite") == "α red kite"  # a Greek word alone stays; a mixed one folds
    assert normalize_prompt("\u0455\u0435\u0445") == "sex"  # ѕ is no Russian letter: a disguise, folded
    assert normalize_prompt("一个红色的圆形") == "一个红色的圆形"
