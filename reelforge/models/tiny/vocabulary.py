"""The words of the shapes world's caption grammars, English and Chinese: the tokenizer's vocabulary.

English captions read `a {colour} {shape} moving {direction} on a {background} background`;
Chinese ones `一个{colour}的{shape}在{background}背景上{direction}移动`. A few extra words of each
language are kept so that near-grammar prompts tokenise to known ids instead of <unk>.

English ids come first and never move: the Chinese words were appended when reelforge-tiny learned
Chinese (`chinese_caption_training.py`), so weights trained before then still read English the same.
"""

from __future__ import annotations

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
PAD, EOS, UNK = SPECIAL_TOKENS

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "cyan", "magenta", "pink", "brown")
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
DIRECTIONS = ("left", "right", "up", "down")
BACKGROUNDS = ("white", "black", "gray")
GRAMMAR = ("a", "an", "the", "moving", "on", "background", "slowly", "quickly", "small", "large", "and", "to", "grey")

# English word -> its Chinese word. Chinese is written without spaces, so the tokenizer isolates
# these words by longest match (see `chinese_word_pattern`).
CHINESE_WORDS: dict[str, str] = {
    # colours and backgrounds
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "purple": "紫色",
    "cyan": "青色",
    "magenta": "品红色",
    "pink": "粉色",
    "brown": "棕色",
    "white": "白色",
    "black": "黑色",
    "gray": "灰色",
    # shapes
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "diamond": "菱形",
    "star": "星形",
    "cross": "十字形",
    # directions: "向上" (up) is one word, so the "上" of "背景上" (on) stays a word of its own
    "left": "向左",
    "right": "向右",
    "up": "向上",
    "down": "向下",
    # grammar
    "a": "一个",
    "moving": "移动",
    "on": "上",
    "background": "背景",
    "slowly": "慢慢地",
    "quickly": "快速",
    "small": "小",
    "large": "大",
    "and": "和",
}
# Chinese grammar words with no single English counterpart.
CHINESE_PARTICLES: dict[str, str] = {"的": "of (attributive particle)", "在": "at (locative)"}


def chinese_vocabulary_words() -> list[str]:
    """Every Chinese word of the vocabulary, in a stable order."""
    return list(dict.fromkeys([*CHINESE_WORDS.values(), *CHINESE_PARTICLES]))


def caption_vocabulary() -> dict[str, int]:
    """Token -> id: specials first (pad = 0, eos = 1, unk = 2), then the English words, then the Chinese ones."""
    words: list[str] = list(SPECIAL_TOKENS)
    for group in (GRAMMAR, COLOURS, SHAPES, DIRECTIONS, BACKGROUNDS, chinese_vocabulary_words()):
        for word in group:
            if word not in words:
                words.append(word)
    return {word: index for index, word in enumerate(words)}


def english_vocabulary_size() -> int:
    """How many ids the English-only vocabulary had: the rows a model trained before Chinese has."""
    return len(caption_vocabulary()) - len(chinese_vocabulary_words())


def chinese_word_pattern() -> str:
    """A regex that isolates each Chinese vocabulary word (longest first) and any other CJK character."""
    words = sorted(chinese_vocabulary_words(), key=len, reverse=True)
    return "|".join(words) + r"|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
