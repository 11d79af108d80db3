"""The form a prompt is moderated in: the same text however its characters were disguised.

A blocklist that matches the prompt as typed is bypassed by writing a blocked word in full-width
letters (ｄｅｅｐｆａｋｅ), with zero-width characters between its letters (deep\u200bfake), or with
look-alike letters from another script (Cyrillic "dеерfаkе"). `normalize_prompt` undoes each:

* NFKC, which maps full-width and other compatibility forms (ligatures, circled and
  mathematical letters) to their plain characters;
* removal of format characters (Unicode category Cf: zero-width spaces and joiners, bidi
  controls, soft hyphens), which render as nothing;
* folding of Cyrillic and Greek letters that look like Latin ones, inside words that also hold
  Latin letters or a look-alike Russian does not use, so a Russian or Greek prompt keeps its own
  letters (a word spelt wholly in Russian look-alikes, such as "сор", is left as it is);
* case folding and collapsed whitespace.

The confusables table is written here rather than taken from a package: the packages on PyPI
(`confusable_homoglyphs`, `homoglyphs`) detect mixed scripts but do not fold text, and the
letters that matter for a Latin blocklist are a short, reviewable list.
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic and Greek letters drawn like a Latin letter (lower case; input is case-folded first).
LATIN_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x",
        "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ӏ": "l",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ς": "c", "ω": "w",
    }
)  # fmt: skip
DISGUISE_ONLY = frozenset("ѕіїјһԁԛԝӏɡ")  # Cyrillic letters of other languages, or none: not Russian
_LATIN = re.compile(r"[a-z]")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s+")


def _fold_word(match: re.Match) -> str:
    word = match.group(0)
    # Only a disguise is folded: a word that mixes Latin letters with look-alikes, or one that uses
    # a look-alike no Russian or Greek word has. "Москва" stays Russian; "dеерfаkе" becomes Latin.
    if _LATIN.search(word) or any(c in DISGUISE_ONLY for c in word):
        return word.translate(LATIN_LOOKALIKES)
    return word


def normalize_prompt(text: str) -> str:
    """`text` as moderation matches it: NFKC, no format characters, look-alikes folded, case-folded."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.casefold()
    text = _WORD.sub(_fold_word, text)
    return _SPACES.sub(" ", text).strip()
