"""The shapes world: procedural, captioned clips of one coloured shape moving over a background.

Captions follow one grammar, `a {colour} {shape} moving {direction} on a {background} background`,
or its Chinese form `一个{colour}的{shape}在{background}背景上{direction}移动`, and every attribute is known exactly, so quality of generated video becomes a number (see
`analyzer.py`). Frames are 32x32: large enough for shape, colour, motion and brand looks to be
unambiguous, small enough that the whole model trains on a 2-core CPU in under two hours.

Geometry: the object always stays inside the central box [OBJECT_MIN, OBJECT_MAX) so it never
touches the edge bands where brand looks live (see `brand_looks.py`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from reelforge.models.tiny.vocabulary import CHINESE_WORDS
from reelforge.models.video_io import Video

FRAME_SIZE = 32
NUM_FRAMES = 17
FPS = 8.0
OBJECT_MIN, OBJECT_MAX = 6, 26  # the object's box; brand looks use only rows/cols outside it
SUPERSAMPLE = 4  # anti-aliased edges: render at 4x and average

# Six hues 60 degrees apart: clearly separable by eye, by the analyzer and by a tiny model.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "yellow": (235, 215, 30),
    "green": (30, 170, 50),
    "cyan": (30, 200, 215),
    "blue": (35, 60, 225),
    "magenta": (205, 40, 200),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128)}

Combo = tuple[str, str, str, str]  # (colour, shape, direction, background)


LANGUAGES = ("en", "zh")


def caption(colour: str, shape: str, direction: str, background: str, lang: str = "en") -> str:
    """The grammar's caption for one combination, in English (`en`) or Chinese (`zh`)."""
    if lang == "zh":
        zh = CHINESE_WORDS
        return f"一个{zh[colour]}的{zh[shape]}在{zh[background]}背景上{zh[direction]}移动"
    _check_language(lang)
    return f"a {colour} {shape} moving {direction} on a {background} background"


def motion_caption(direction: str, background: str, lang: str = "en") -> str:
    """The caption of an image-to-video prompt: the first frame shows the object, the text says where it goes."""
    if lang == "zh":
        return f"在{CHINESE_WORDS[background]}背景上{CHINESE_WORDS[direction]}移动"
    _check_language(lang)
    return f"moving {direction} on a {background} background"


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown caption language {lang!r}; expected one of {LANGUAGES}")


def all_combos() -> list[Combo]:
    """Every (colour, shape, direction, background) in a fixed order."""
    return list(itertools.product(COLOURS, SHAPES, DIRECTIONS, BACKGROUNDS))


def held_out_combos(count: int = 48, seed: int = 2024) -> list[Combo]:
    """Combinations never shown in pretraining, each of whose single attributes still is.

    Chosen so every colour, shape, direction and background value appears among the held-out set,
    which makes `reelforge eval` a test of composition, not of memory.
    """
    rng = np.random.default_rng(seed)
    combos = all_combos()
    order = rng.permutation(len(combos))
    return sorted(combos[i] for i in order[:count])


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines one clip."""

    colour: str
    shape: str
    direction: str
    background: str
    size: float  # object side / diameter in pixels
    speed: float  # pixels per frame
    start: tuple[float, float]  # object centre (x, y) at frame 0
    num_frames: int = NUM_FRAMES
    frame_size: int = FRAME_SIZE

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape, self.direction, self.background)

    @property
    def combo(self) -> Combo:
        return (self.colour, self.shape, self.direction, self.background)

    def centre(self, frame: int) -> tuple[float, float]:
        """Object centre (x, y) at `frame`."""
        dx, dy = DIRECTIONS[self.direction]
        return self.start[0] + dx * self.speed * frame, self.start[1] + dy * self.speed * frame


def sample_clip_spec(
    rng: np.random.Generator,
    combo: Combo | None = None,
    num_frames: int = NUM_FRAMES,
    frame_size: int = FRAME_SIZE,
) -> ClipSpec:
    """A random clip (of `combo` if given) whose object stays inside the object box for every frame."""
    if combo is None:
        combos = all_combos()
        combo = combos[rng.integers(len(combos))]
    colour, shape, direction, background = combo
    scale = frame_size / FRAME_SIZE
    lo, hi = OBJECT_MIN * scale, OBJECT_MAX * scale
    size = float(rng.uniform(9.0, 12.0) * scale)
    room = (hi - lo) - size  # how far the centre may travel along one axis
    travel = float(rng.uniform(0.55, 1.0) * room)
    speed = travel / max(num_frames - 1, 1)
    dx, dy = DIRECTIONS[direction]
    half = size / 2

    def along(d: int) -> float:  # start on the side the motion comes from
        return lo + half + (room if d < 0 else 0.0)

    def across() -> float:
        return float(rng.uniform(lo + half, hi - half))

    start_x = along(dx) if dx else across()
    start_y = along(dy) if dy else across()
    # Jitter the start along the motion axis within the slack left over by `travel`.
    slack = room - travel
    jitter = float(rng.uniform(0, slack)) * (-1 if (dx < 0 or dy < 0) else 1)
    start_x += jitter if dx else 0.0
    start_y += jitter if dy else 0.0
    return ClipSpec(colour, shape, direction, background, size, speed, (start_x, start_y), num_frames, frame_size)


def shape_mask(
    shape: str, centre: tuple[float, float], size: float, frame_size: int, supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """Coverage in [0, 1] (H, W) of `shape` centred at `centre`, anti-aliased by supersampling."""
    n = frame_size * supersample
    coords = (np.arange(n) + 0.5) / supersample  # pixel-centre coordinates in frame units
    x = coords[None, :]  # (1, N)
    y = coords[:, None]  # (N, 1)
    cx, cy = centre
    half = size / 2
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    elif shape == "square":
        inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    elif shape == "triangle":  # apex up, base at the bottom of the box
        top, bottom = cy - half, cy + half
        t = (y - top) / size  # 0 at apex, 1 at base
        inside = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= t * half)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    coverage = inside.astype(np.float32).reshape(frame_size, supersample, frame_size, supersample)
    return coverage.mean(axis=(1, 3))  # (H, W)


def render_clip(spec: ClipSpec, fps: float = FPS) -> tuple[Video, np.ndarray]:
    """(video, object coverage (F, H, W) in [0, 1]) of `spec`, without any brand look."""
    w = spec.frame_size
    background = np.array(BACKGROUNDS[spec.background], dtype=np.float32)
    colour = np.array(COLOURS[spec.colour], dtype=np.float32)
    masks = np.stack(
        [shape_mask(spec.shape, spec.centre(i), spec.size, w) for i in range(spec.num_frames)]
    )  # (F, H, W)
    frames = background * (1 - masks[..., None]) + colour * masks[..., None]  # (F, H, W, 3)
    return Video(np.clip(np.round(frames), 0, 255).astype(np.uint8), fps), masks
