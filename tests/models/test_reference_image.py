"""First-frame images: every refusal names input_reference and what was wrong; fitting covers and centre-crops."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from reelforge.errors import InvalidReferenceImageError
from reelforge.models.reference_image import ReferenceImageRules, fit_to_size, read_reference_image, reference_frame


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _solid(w: int, h: int, colour=(200, 30, 30), mode="RGB") -> Image.Image:
    return Image.new(mode, (w, h), colour)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty"),
        (b"not an image at all", "is not an image"),
        (_encode(_solid(64, 64), "BMP"), "is BMP; expected PNG, JPEG or WebP"),
        (_encode(_solid(10, 10)), "too small for a 32x32 video: it must be at least 16x16"),
        (_encode(_solid(200, 40)), "aspect ratio 5.00"),
    ],
)
def test_bad_images_are_refused_naming_the_field(data: bytes, expected: str):
    with pytest.raises(InvalidReferenceImageError, match=expected) as info:
        read_reference_image(data, 32, 32)
    assert info.value.param == "input_reference"
    assert info.value.http_status == 400


def test_animated_images_are_refused():
    frames = [_solid(64, 64, c) for c in ((255, 0, 0), (0, 255, 0))]
    for fmt in ("WEBP", "PNG"):  # animated WebP and APNG
        data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:])
        with pytest.raises(InvalidReferenceImageError, match="is animated \\(2 frames\\)"):
            read_reference_image(data, 32, 32)
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidReferenceImageError, match="is GIF; expected PNG, JPEG or WebP"):
        read_reference_image(gif, 32, 32)


def test_huge_images_are_refused_before_decoding():
    with pytest.raises(InvalidReferenceImageError, match="at most 1 MB"):
        read_reference_image(b"\x89PNG" + b"0" * (2 * 2**20), 32, 32, ReferenceImageRules(max_bytes=2**20))
    # 20000 x 20000 = 400 megapixels in a few hundred bytes: refused from the header alone.
    bomb = _encode(Image.new("1", (20000, 20000)))
    assert len(bomb) < 200_000
    with pytest.raises(InvalidReferenceImageError, match="megapixels"):
        read_reference_image(bomb, 32, 32)


def test_fitting_covers_the_size_and_crops_the_centre():
    # 80x40 with a red left quarter, green middle half, blue right quarter -> 32x32 keeps the green middle.
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:60] = (0, 255, 0)
    pixels[:, 60:] = (0, 0, 255)
    frame = fit_to_size(Image.fromarray(pixels), 32, 32)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    assert (frame[:, 4:28, 1] > 200).all() and (frame[:, 4:28, 0] < 50).all()


def test_exif_orientation_and_transparency_are_applied():
    upright = np.zeros((64, 32, 3), np.uint8)
    upright[:32] = (255, 255, 255)  # white top half, black bottom half
    stored = Image.fromarray(upright).rotate(90, expand=True)  # stored sideways, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = read_reference_image(_encode(stored, "JPEG", exif=exif.tobytes()), 32, 64)
    assert image.size == (32, 64)
    arr = np.asarray(image)
    assert arr[:32].mean() > 200 and arr[32:].mean() < 50

    cut_out = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent product cut-out
    assert np.asarray(read_reference_image(_encode(cut_out), 32, 32)).min() == 255  # laid on white


def test_reference_frame_is_ready_for_the_sampler():
    frame = reference_frame(_encode(_solid(48, 48, (10, 20, 30)), "WEBP", lossless=True), 32, 32)
    assert frame.shape == (32, 32, 3)
    assert tuple(frame[16, 16]) == (10, 20, 30)


def _swapped_primaries_profile() -> bytes:
    """sRGB's ICC profile with the red and green colorants swapped: its (255, 0, 0) is sRGB's green."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", data[128:132])[0]
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    # Each tag-table entry is signature, offset, size: swapping the offsets swaps the colorants.
    data[red + 4 : red + 12], data[green + 4 : green + 12] = data[green + 4 : green + 12], data[red + 4 : red + 12]
    return bytes(data)


def test_an_embedded_colour_profile_is_converted_to_srgb():
    icc = _swapped_primaries_profile()
    tagged = _encode(_solid(32, 32, (255, 0, 0)), "PNG", icc_profile=icc)
    red, green, blue = np.asarray(read_reference_image(tagged, 32, 32))[16, 16].astype(int)
    assert green > 200 and red < 60 and blue < 60  # the profile's "red" is sRGB green
    # The same pixels as JPEG, and with transparency, go through the same conversion.
    jpeg = np.asarray(read_reference_image(_encode(_solid(32, 32, (255, 0, 0)), "JPEG", icc_profile=icc), 32, 32))
    assert jpeg[16, 16, 1] > 200 and jpeg[16, 16, 0] < 60
    rgba = _encode(_solid(32, 32, (255, 0, 0, 255), mode="RGBA"), "PNG", icc_profile=icc)
    assert np.asarray(read_reference_image(rgba, 32, 32))[16, 16, 1] > 200
    # An sRGB-tagged image keeps its colours.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    kept = np.asarray(read_reference_image(_encode(_solid(32, 32, (200, 30, 30)), icc_profile=srgb), 32, 32))
    assert np.abs(kept[16, 16].astype(int) - (200, 30, 30)).max() <= 2


def test_an_unreadable_colour_profile_is_ignored_with_a_warning(caplog):
    data = _encode(_solid(32, 32, (200, 30, 30)), "PNG", icc_profile=b"not a profile" * 10)
    with caplog.at_level("WARNING"):
        image = read_reference_image(data, 32, 32)
    assert tuple(np.asarray(image)[16, 16]) == (200, 30, 30)
    assert "ICC profile could not be applied" in caplog.text
