"""Prompt moderation: every generation request passes the platform's safety rules and its tenant's
policy before anything is queued.

The prompt is first normalised (`prompt_normalization`: NFKC, format characters removed, look-alike
letters folded, case-folded), so full-width, zero-width and Cyrillic disguises of a blocked word
match as the word itself. Three layers then apply, and the first rule that fires is named in the
refusal:

* the platform's safety rules (`SAFETY_PATTERNS`, English and Chinese), always on: no operator or
  tenant policy removes them;
* the operator's default policy (`moderation.default`), for every tenant;
* the tenant's own policy (`moderation.tenants.<tenant>`), which adds to both.

A policy has blocked terms (whole words in any case, plurals included; a term in Chinese matches
anywhere, since Chinese has no spaces between words) and blocked patterns. Patterns run on RE2
(`google-re2`), whose matching time is linear in the prompt: no pattern an operator writes can
make one request hold the ingress for seconds, and patterns RE2 cannot run in linear time
(backreferences, lookaround) are refused when the config loads. A company with its own
classifier (a Llama Guard-style model on a local path) plugs it in as
`classifier: "package.module:Factory"`; the factory gets `classifier_path` and returns an object
with `classify(prompt) -> Verdict`. The tenant's classifier, else the default policy's, runs last.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelforge.errors import UserInputError
from reelforge.platform.serving.prompt_normalization import normalize_prompt

# Refused always: sexual content involving minors, non-consensual intimate imagery, and prompts
# asking for a deepfake or a face swap, in English and in Chinese. Policies add to these.
_MINORS = r"(child|children|minors?|underage|kids?|teens?|teenagers?|boys?|girls?)"
_SEXUAL = r"(nude|naked|sexual|sexy|porn\w*|explicit)"
_MINORS_ZH = r"(儿童|孩子|小孩|幼童|幼女|未成年|少女|少年|女童|男童|萝莉)"
_SEXUAL_ZH = r"(色情|裸体|裸露|赤裸|性感|淫秽|情色|性行为)"
SAFETY_PATTERNS = (
    rf"\b{_MINORS}\b.*\b{_SEXUAL}\b",
    rf"\b{_SEXUAL}\b.*\b{_MINORS}\b",
    r"\bdeep\s*fakes?\b",
    r"\bface\s*swap(s|ped|ping)?\b",
    r"\b(non[- ]?consensual|revenge porn)\b",
    rf"{_MINORS_ZH}.*{_SEXUAL_ZH}",
    rf"{_SEXUAL_ZH}.*{_MINORS_ZH}",
    r"(深度伪造|深伪|换脸|AI换脸|deepfake)",
    r"(未经同意|非自愿|偷拍|复仇色情)",
)


def _is_cjk(text: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)


def term_pattern(term: str) -> str:
    """The RE2 pattern a blocked term matches as: a whole word with its plural, or for Chinese, anywhere."""
    normalized = normalize_prompt(term)
    if _is_cjk(normalized):
        return re2.escape(normalized)
    return rf"\b{re2.escape(normalized)}(s|es)?\b"


class ContentPolicyError(UserInputError):
    """A prompt was refused by the tenant's moderation policy."""

    code = "content_policy_violation"


@dataclass(frozen=True)
class Verdict:
    """A moderation decision; `rule` names what fired when not allowed."""

    allowed: bool
    rule: str | None = None
    category: str | None = None


class PromptClassifier(Protocol):
    """A pluggable classifier (e.g. Llama Guard from a local path)."""

    def classify(self, prompt: str) -> Verdict: ...


class ModerationPolicy(BaseModel):
    """One tenant's (or the default) moderation rules."""

    model_config = ConfigDict(extra="forbid")

    blocked_terms: list[str] = Field(default_factory=list)
    blocked_patterns: list[str] = Field(default_factory=list)  # added to SAFETY_PATTERNS, never instead
    classifier: str | None = None  # "package.module:Factory"
    classifier_path: str | None = None  # local model directory handed to the factory

    @field_validator("blocked_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compile_pattern(pattern)
            except re2.error as exc:
                detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                raise ValueError(
                    f"blocked pattern {pattern!r} is not a valid regular expression for RE2 (linear-time matching: "
                    f"no backreferences or lookaround): {detail}"
                ) from None
        return patterns


def compile_pattern(pattern: str):
    """`pattern` as a case-insensitive RE2 regex in which `.` also matches newlines."""
    options = re2.Options()
    options.case_sensitive = False
    options.dot_nl = True
    options.log_errors = False
    return re2.compile(pattern, options)


def _load_classifier(spec: str, path: str | None) -> PromptClassifier:
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"moderation classifier {spec!r} cannot be imported: {exc}") from exc
    return factory(path)


class PromptModerator:
    """Applies the safety rules and then each policy in order: terms, patterns, then one classifier."""

    def __init__(self, policies: Sequence[ModerationPolicy]) -> None:
        self.rules: list[tuple[str, object]] = [
            (f"safety rule {pattern!r}", compile_pattern(pattern)) for pattern in SAFETY_PATTERNS
        ]
        for policy in policies:
            self.rules += [(f"blocked term {t!r}", compile_pattern(term_pattern(t))) for t in policy.blocked_terms]
            self.rules += [(f"blocked pattern {p!r}", compile_pattern(p)) for p in policy.blocked_patterns]
        chosen = next((p for p in reversed(policies) if p.classifier), None)  # the tenant's wins
        self.classifier = _load_classifier(chosen.classifier, chosen.classifier_path) if chosen else None

    def check(self, prompt: str) -> Verdict:
        """The verdict on `prompt`, matched in its normalised form."""
        normalized = normalize_prompt(prompt)
        for rule, compiled in self.rules:
            if compiled.search(normalized):
                return Verdict(False, rule, "blocklist")
        if self.classifier is not None:
            return self.classifier.classify(prompt)
        return Verdict(True)


def refuse(verdict: Verdict) -> ContentPolicyError:
    """The 400 a refused prompt gets: it names the rule that fired."""
    return ContentPolicyError(f"the prompt was refused by the content policy: {verdict.rule}", param="prompt")
