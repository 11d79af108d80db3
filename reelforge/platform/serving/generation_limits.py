"""What a served model accepts: the `seconds` and `size` values of the Videos API, checked at the door.

A generator replica reads its limits from the loaded model (`capabilities_of`) and the ingress
caches them, so a request the model cannot serve is a 400 naming what is allowed, never a job
that fails later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from reelforge.errors import InvalidGenerationSettingsError
from reelforge.models.guidance import needs_unconditional
from reelforge.models.loading import VideoModel
from reelforge.models.sampling import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_STEPS

MAX_SECONDS_CONSIDERED = 60


@dataclass(frozen=True)
class ModelCapabilities:
    """The request values one base model supports."""

    model: str
    fps: float
    allowed_seconds: tuple[int, ...]
    default_seconds: int
    size_multiple: int
    max_width: int
    max_height: int
    default_size: str
    image_input: str = "none"  # none, optional or required: whether the model takes input_reference
    experts: int = 1  # two: Wan 2.2 A14B's high- and low-noise experts, which take `guidance_2`
    default_guidance_2: float | None = None  # the low-noise scale when a request leaves it out (None: `guidance`)
    fingerprint: str | None = None  # the served checkpoint's `base_fingerprint`: which adapters fit it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelCapabilities:
        return cls(**{**data, "allowed_seconds": tuple(data["allowed_seconds"])})

    def frames_for(self, seconds: int) -> int:
        """Frame count of a clip of `seconds`: one frame per 1/fps plus the first."""
        return round(seconds * self.fps) + 1


def capabilities_of(model: VideoModel) -> ModelCapabilities:
    """Read the supported seconds and sizes off a loaded model."""
    d = model.defaults
    allowed = []
    for seconds in range(1, MAX_SECONDS_CONSIDERED + 1):
        frames = round(seconds * d.fps) + 1
        if frames <= d.max_frames and model.spec.frame_count_error(model.pipeline, frames) is None:
            allowed.append(seconds)
    default_seconds = max(1, round((d.num_frames - 1) / d.fps))
    if allowed and default_seconds not in allowed:
        default_seconds = min(allowed, key=lambda s: abs(s - default_seconds))
    return ModelCapabilities(
        model=model.name,
        fps=d.fps,
        allowed_seconds=tuple(allowed),
        default_seconds=default_seconds,
        size_multiple=model.spec.size_multiple(model.pipeline),
        max_width=d.max_width,
        max_height=d.max_height,
        default_size=f"{d.width}x{d.height}",
        image_input=model.spec.image_input.value,
        experts=len(model.spec.experts(model.pipeline)),
        default_guidance_2=d.guidance_2,
        fingerprint=model.fingerprint,
    )


def check_seconds(caps: ModelCapabilities, seconds: str | int | None) -> int:
    """The requested duration as whole seconds, or a 400 listing the allowed values."""
    if seconds is None or seconds == "":
        return caps.default_seconds
    text = str(seconds).strip()
    allowed = ", ".join(str(s) for s in caps.allowed_seconds)
    if not (text.isascii() and text.isdigit()) or int(text) not in caps.allowed_seconds:
        raise InvalidGenerationSettingsError(
            f"seconds {text!r} is not supported by {caps.model}; allowed values: {allowed}", param="seconds"
        )
    return int(text)


def check_size(caps: ModelCapabilities, size: str | None) -> tuple[int, int]:
    """'WIDTHxHEIGHT' -> (width, height), or a 400 saying what sizes the model takes."""
    text = (size or caps.default_size).strip().lower()
    parts = text.split("x")
    m = caps.size_multiple
    rule = (
        f"{caps.model} takes WIDTHxHEIGHT with each side a multiple of {m} between {m} and "
        f"{caps.max_width}x{caps.max_height} (default {caps.default_size})"
    )
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 6 for p in parts):
        raise InvalidGenerationSettingsError(f"size {size!r} is not supported: {rule}", param="size")
    width, height = int(parts[0]), int(parts[1])
    for side, limit in ((width, caps.max_width), (height, caps.max_height)):
        if side < m or side % m or side > limit:
            raise InvalidGenerationSettingsError(f"size {size!r} is not supported: {rule}", param="size")
    return width, height


def check_prompt(prompt: str) -> str:
    """A non-empty prompt of at most MAX_PROMPT_CHARS characters."""
    if not prompt or not prompt.strip():
        raise InvalidGenerationSettingsError("prompt is empty", param="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidGenerationSettingsError(
            f"prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are accepted", param="prompt"
        )
    return prompt


def check_sampling(
    caps: ModelCapabilities,
    *,
    steps: int | None = None,
    guidance: float | None = None,
    guidance_2: float | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
) -> None:
    """Our own optional fields: steps, guidance(s) and seed within the sampler's bounds, `guidance_2` only
    on a two-expert model, and a negative prompt only where guidance uses it (at scale 1 throughout it
    would be silently ignored)."""
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise InvalidGenerationSettingsError(f"steps {steps} must be between 1 and {MAX_STEPS}", param="steps")
    for name, scale in (("guidance", guidance), ("guidance_2", guidance_2)):
        if scale is not None and not 0.0 <= scale <= MAX_GUIDANCE:
            raise InvalidGenerationSettingsError(f"{name} {scale} must be between 0 and {MAX_GUIDANCE:g}", param=name)
    if guidance_2 is not None and caps.experts < 2:
        raise InvalidGenerationSettingsError(
            f"guidance_2 is the low-noise expert's scale of a two-expert model (Wan 2.2 A14B); {caps.model} has "
            "one transformer: use guidance",
            param="guidance_2",
        )
    if seed is not None and not 0 <= seed < 2**31:
        raise InvalidGenerationSettingsError(f"seed {seed} must be between 0 and 2^31 - 1", param="seed")
    if negative_prompt and guidance is not None and not needs_unconditional(guidance):
        # A two-expert model's low-noise steps run at guidance_2 (or its default), not at `guidance`.
        low_noise = (
            guidance
            if caps.experts < 2
            else next((s for s in (guidance_2, caps.default_guidance_2) if s is not None), guidance)
        )
        if not needs_unconditional(low_noise):
            raise InvalidGenerationSettingsError(
                "negative_prompt has no effect at guidance 1 (the sampler then makes no unconditional pass); "
                "leave guidance unset or raise it",
                param="negative_prompt",
            )
