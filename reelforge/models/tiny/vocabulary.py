"""The words of the shapes world's caption grammar: the word-level tokenizer's vocabulary.

Captions read `a {colour} {shape} moving {direction} on a {background} background`. A few extra
English words are kept so that near-grammar prompts tokenise to known ids instead of <unk>.
"""

from __future__ import annotations

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
PAD, EOS, UNK = SPECIAL_TOKENS

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "cyan", "magenta", "pink", "brown")
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
DIRECTIONS = ("left", "right", "up", "down")
BACKGROUNDS = ("white", "black", "gray")
GRAMMAR = ("a", "an", "the", "moving", "on", "background", "slowly", "quickly", "small", "large", "and", "to", "grey")


def caption_vocabulary() -> dict[str, int]:
    """Token -> id, specials first (pad = 0, eos = 1, unk = 2), then every word once, in a stable order."""
    words: list[str] = list(SPECIAL_TOKENS)
    for group in (GRAMMAR, COLOURS, SHAPES, DIRECTIONS, BACKGROUNDS):
        for word in group:
            if word not in words:
                words.append(word)
    return {word: index for index, word in enumerate(words)}
