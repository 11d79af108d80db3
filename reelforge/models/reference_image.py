"""First-frame images for image-to-video: what is accepted, and how it is fitted to the video's size.

The rule, as documented for `input_reference` and `reelforge generate --image`:

* PNG, JPEG or WebP, one frame (an animated GIF, PNG or WebP is refused), at most 20 MB and
  40 megapixels (checked from the header, before any pixel is decoded).
* EXIF orientation is applied (phone photos stand up), transparency is laid on white (product
  cut-outs), and the image is converted to RGB.
* Colour is managed: an embedded ICC profile (Display P3 from iPhones, Adobe RGB from cameras, a
  CMYK print profile) is converted to sRGB, the space the models were trained in, so a brand's
  red stays that red. An image without a profile is taken as sRGB; an unreadable profile is
  ignored with a warning, as browsers do.
* Its aspect ratio must be within 2x of the video's: fitting then crops at most half of either side.
* Each side must be at least half the video's corresponding side (at most 2x upscaling) and at
  least 16 pixels.
* Fitting scales the image to *cover* the video's size, keeping its aspect ratio (Lanczos), then
  crops the centre: nothing is stretched, and the crop is symmetric.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from reelforge.errors import InvalidReferenceImageError

# MPO is how PIL reads many phone cameras' JPEGs (a JPEG with a second, preview frame).
FORMATS = ("PNG", "JPEG", "MPO", "WEBP")

logger = logging.getLogger(__name__)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class ReferenceImageRules:
    """The limits a first-frame image must meet (defaults are the documented rule)."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_aspect_change: float = 2.0
    max_upscale: float = 2.0
    min_side: int = 16


def read_reference_image(data: bytes, width: int, height: int, rules: ReferenceImageRules = ReferenceImageRules()):
    """Check `data` against the rules for a width x height video; return the image as RGB PIL."""
    if not data:
        raise InvalidReferenceImageError("input_reference is empty; expected a PNG, JPEG or WebP image")
    if len(data) > rules.max_bytes:
        raise InvalidReferenceImageError(
            f"input_reference is {len(data) / 2**20:.1f} MB; at most {rules.max_bytes / 2**20:.0f} MB is accepted"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidReferenceImageError(
            f"input_reference declares too many pixels ({exc}); at most {rules.max_pixels / 1e6:.0f} megapixels "
            "are accepted"
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidReferenceImageError(
            f"input_reference is not an image (expected PNG, JPEG or WebP): {exc}"
        ) from exc
    if image.format not in FORMATS:
        raise InvalidReferenceImageError(f"input_reference is {image.format}; expected PNG, JPEG or WebP")
    if image.format != "MPO" and getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) > 1:
        raise InvalidReferenceImageError(
            f"input_reference is animated ({image.n_frames} frames); give a single still image as the first frame"
        )
    w, h = image.size
    if w * h > rules.max_pixels:
        raise InvalidReferenceImageError(
            f"input_reference is {w}x{h} ({w * h / 1e6:.0f} megapixels); at most {rules.max_pixels / 1e6:.0f} are accepted"
        )
    try:
        image = ImageOps.exif_transpose(image)
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidReferenceImageError(f"input_reference could not be decoded: {exc}") from exc
    w, h = image.size
    _check_shape(w, h, width, height, rules)
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)  # white is white in any RGB profile
    return to_srgb(image, icc)


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """`image` as RGB in sRGB: converted from its ICC profile `icc` when it has a readable one."""
    if image.mode not in ("RGB", "CMYK", "L"):
        image = image.convert("RGB")  # palette and 16-bit modes: the profile describes their RGB or grey values
    if not icc:
        return image.convert("RGB")
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(
            image, source, _SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        logger.warning("input image's ICC profile could not be applied (%s); taking its colours as sRGB", exc)
        return image.convert("RGB")


def _check_shape(w: int, h: int, width: int, height: int, rules: ReferenceImageRules) -> None:
    ratio = (w / h) / (width / height)
    if not 1 / rules.max_aspect_change <= ratio <= rules.max_aspect_change:
        raise InvalidReferenceImageError(
            f"input_reference is {w}x{h}, aspect ratio {w / h:.2f}; the video is {width}x{height} "
            f"({width / height:.2f}) and the image's ratio must be within {rules.max_aspect_change:g}x of it, "
            "so that fitting crops at most half of a side"
        )
    need_w = max(rules.min_side, int(np.ceil(width / rules.max_upscale)))
    need_h = max(rules.min_side, int(np.ceil(height / rules.max_upscale)))
    if w < need_w or h < need_h:
        raise InvalidReferenceImageError(
            f"input_reference is {w}x{h}, too small for a {width}x{height} video: it must be at least "
            f"{need_w}x{need_h} (at most {rules.max_upscale:g}x upscaling)"
        )


def fit_to_size(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Scale `image` to cover width x height keeping its aspect ratio, crop the centre: (H, W, 3) uint8."""
    return np.asarray(
        ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    )


def reference_frame(data: bytes, width: int, height: int, rules: ReferenceImageRules = ReferenceImageRules()):
    """Checked and fitted: the first frame (H, W, 3) uint8 a width x height video starts from."""
    return fit_to_size(read_reference_image(data, width, height, rules), width, height)


def reference_frame_from_file(path, width: int, height: int, rules: ReferenceImageRules = ReferenceImageRules()):
    """`reference_frame` of an image file, its size checked before it is read."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InvalidReferenceImageError(f"--image {path} is not a file", param="image")
    if path.stat().st_size > rules.max_bytes:
        raise InvalidReferenceImageError(
            f"--image {path} is {path.stat().st_size / 2**20:.1f} MB; at most {rules.max_bytes / 2**20:.0f} MB is accepted",
            param="image",
        )
    return reference_frame(path.read_bytes(), width, height, rules)
