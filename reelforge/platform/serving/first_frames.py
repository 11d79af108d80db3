"""Image-to-video first frames on the platform: accepted at create, stored as PNG, read by the generator.

The ingress checks the upload against the model (does it take an image at all?) and the documented
rule (`reference_image`), fits it to the request's size once, and stores the fitted PNG beside the
video before the job is recorded; the generator reads exactly those pixels, checked by digest.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from reelforge.errors import InvalidReferenceImageError
from reelforge.models.reference_image import ReferenceImageRules, reference_frame
from reelforge.platform.serving.generation_limits import ModelCapabilities


def fitted_reference(
    caps: ModelCapabilities, reference: bytes | None, width: int, height: int, max_bytes: int
) -> bytes | None:
    """The first frame as a PNG of exactly width x height, or None for text-to-video; 400s name input_reference."""
    if reference is None:
        if caps.image_input == "required":
            raise InvalidReferenceImageError(
                f"model {caps.model} is an image-to-video model: send the first frame as input_reference"
            )
        return None
    if caps.image_input == "none":
        raise InvalidReferenceImageError(f"model {caps.model} is a text-to-video model and takes no input_reference")
    frame = reference_frame(reference, width, height, ReferenceImageRules(max_bytes=max_bytes))
    return png_bytes(frame)


def png_bytes(frame: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (lossless: the generator sees the fitted pixels exactly)."""
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="PNG")
    return out.getvalue()


def digest(png: bytes) -> str:
    return hashlib.sha256(png).hexdigest()


def frame_of_png(png: bytes, expected_sha256: str) -> np.ndarray:
    """The stored first frame (H, W, 3) uint8, refusing bytes that are not what was accepted."""
    if digest(png) != expected_sha256:
        raise ValueError("the stored first frame does not match the digest recorded with the job")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
