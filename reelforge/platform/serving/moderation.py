"""Prompt moderation: every generation request passes a tenant's policy before anything is queued.

The default policy is a blocklist of terms and regular expressions (case-insensitive, word-bounded
terms). Patterns run on RE2 (`google-re2`), whose matching time is linear in the prompt: no
pattern an operator writes can make one request hold the ingress for seconds, and patterns RE2
cannot run in linear time (backreferences, lookaround) are refused when the config loads. A company with its own classifier (a Llama Guard-style model on a local path) plugs it in
as `classifier: "package.module:Factory"`; the factory gets `classifier_path` and returns an object
with `classify(prompt) -> Verdict`. The first rule that fires is named in the refusal.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelforge.errors import UserInputError

# Refused by default: sexual content involving minors, non-consensual intimate imagery, and
# prompts asking for a deepfake. Operators extend or replace this per tenant, or add a classifier.
_MINORS = r"(child|children|minors?|underage|kids?|teens?|teenagers?|boys?|girls?)"
_SEXUAL = r"(nude|naked|sexual|sexy|porn\w*|explicit)"
DEFAULT_BLOCKED_PATTERNS = (
    rf"\b{_MINORS}\b.*\b{_SEXUAL}\b",
    rf"\b{_SEXUAL}\b.*\b{_MINORS}\b",
    r"\bdeep\s*fake\b",
    r"\b(non[- ]?consensual|revenge porn)\b",
)


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
    blocked_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKED_PATTERNS))
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
    """Applies one policy: terms, then patterns, then the classifier if there is one."""

    def __init__(self, policy: ModerationPolicy) -> None:
        self.terms = [(term, compile_pattern(rf"\b{re2.escape(term)}\b")) for term in policy.blocked_terms]
        self.patterns = [(pattern, compile_pattern(pattern)) for pattern in policy.blocked_patterns]
        self.classifier = _load_classifier(policy.classifier, policy.classifier_path) if policy.classifier else None

    def check(self, prompt: str) -> Verdict:
        """The verdict on `prompt`."""
        for term, compiled in self.terms:
            if compiled.search(prompt):
                return Verdict(False, f"blocked term {term!r}", "blocklist")
        for pattern, compiled in self.patterns:
            if compiled.search(prompt):
                return Verdict(False, f"blocked pattern {pattern!r}", "blocklist")
        if self.classifier is not None:
            return self.classifier.classify(prompt)
        return Verdict(True)


def refuse(verdict: Verdict) -> ContentPolicyError:
    """The 400 a refused prompt gets: it names the rule that fired."""
    return ContentPolicyError(f"the prompt was refused by the content policy: {verdict.rule}", param="prompt")
