"""The watermark's equations and robustness on shapes-world clips (pure numpy + PyAV; no services)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.watermark import _reencode, _resize, psnr
from reelforge.models.tiny.footage import write_footage
from reelforge.models.video_io import read_video
from reelforge.provenance.watermark import (
    crc16,
    decode_bits,
    embed_watermark,
    payload_bits,
    read_watermark,
)

KEY = b"reelforge-test-watermark-key-32b"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    """Four shapes-world clips at 128x128 (a size the tiny model serves; real models are larger)."""
    folder = tmp_path_factory.mktemp("wm-footage")
    return [_resize(read_video(c.video).frames, 128, 128) for c in write_footage(folder, count=4, seed=11)]


def test_payload_bits_round_trip_and_the_crc_rejects_a_flipped_bit():
    bits = payload_bits(0xDEADBEEF)
    assert bits.shape == (48,) and set(bits) <= {-1.0, 1.0}
    assert decode_bits(bits) == 0xDEADBEEF
    flipped = bits.copy()
    flipped[7] *= -1
    assert decode_bits(flipped) is None
    assert crc16(0) != crc16(1)
    with pytest.raises(ValueError):
        payload_bits(2**32)


def test_mark_reads_back_and_costs_little(clips):
    for i, frames in enumerate(clips):
        marked = embed_watermark(frames, KEY, 1000 + i)
        assert psnr(frames, marked) > 38.0  # measured ~40 dB at the default strength
        assert read_watermark(marked, KEY).payload_id == 1000 + i


def test_unmarked_video_and_wrong_key_read_nothing(clips):
    for frames in clips:
        assert not read_watermark(frames, KEY).found
        assert not read_watermark(embed_watermark(frames, KEY, 7), b"another-key-of-sufficient-length").found


def test_survives_reencoding_halving_and_cropping(clips, tmp_path: Path):
    for i, frames in enumerate(clips):
        served = _reencode(embed_watermark(frames, KEY, 4242 + i), 8.0, 18, tmp_path)
        attacks = {
            "crf 35": _reencode(served, 8.0, 35, tmp_path),
            "halved": _reencode(_resize(served, 64, 64), 8.0, 23, tmp_path),
            "cropped 10%": _reencode(served[:, 6:122, 0:116], 8.0, 23, tmp_path),
        }
        for name, attacked in attacks.items():
            assert read_watermark(attacked, KEY).payload_id == 4242 + i, name
