"""The HDR-to-SDR equations against the standards' own anchor values (ST 2084, BT.2100, BT.2408, BT.2087)."""

from __future__ import annotations

import numpy as np
import pytest

from reelforge.models.hdr_to_sdr import (
    BT2020_TO_BT709,
    KNEE,
    hdr_to_sdr,
    hlg_to_nits,
    nits_to_pq,
    pq_to_nits,
    roll_off,
    tone_map,
)


def test_pq_matches_st2084_anchors_and_inverts():
    # ST 2084: code 0.5081 is 100 cd/m², 0.5807 is 203 (BT.2408 reference white), 1.0 is 10000.
    assert pq_to_nits(np.array([0.0, 0.5081, 1.0])) == pytest.approx([0.0, 100.0, 10000.0], rel=1e-3)
    assert nits_to_pq(np.array([203.0])) == pytest.approx([0.5807], abs=1e-4)
    nits = np.geomspace(0.01, 10000, 50)
    assert pq_to_nits(nits_to_pq(nits)) == pytest.approx(nits, rel=1e-6)


def test_hlg_matches_bt2100_and_bt2408_anchors():
    grey = lambda level: hlg_to_nits(np.full(3, level))  # noqa: E731
    assert grey(0.75) == pytest.approx([203.0] * 3, rel=2e-3)  # BT.2408: 75% HLG is reference white
    assert grey(1.0) == pytest.approx([1000.0] * 3, rel=1e-6)  # nominal peak
    assert grey(0.0) == pytest.approx([0.0] * 3)
    # Brighter signal, more light, on both sides of the curve's joint at 0.5.
    levels = np.linspace(0.05, 1.0, 40)
    assert np.all(np.diff([grey(v)[0] for v in levels]) > 0)


def test_gamut_conversion_keeps_white_and_bt709_primaries():
    assert BT2020_TO_BT709.sum(axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    bt709_to_bt2020 = np.linalg.inv(BT2020_TO_BT709)
    for primary in np.eye(3, dtype=np.float32):
        assert BT2020_TO_BT709 @ (bt709_to_bt2020 @ primary) == pytest.approx(primary, abs=1e-5)


def test_roll_off_is_identity_below_the_knee_and_smooth_into_the_shoulder():
    below = np.linspace(0, KNEE, 20)
    assert roll_off(below) == pytest.approx(below)
    x = np.linspace(0, 8, 4000)  # up to 8x reference white (1600 nits)
    y = roll_off(x)
    assert np.all(np.diff(y) > 0) and y.max() < 1.0
    assert roll_off(np.array([1e4])) == pytest.approx([1.0])
    slope = (roll_off(np.array([KNEE + 1e-4])) - roll_off(np.array([KNEE]))) / 1e-4
    assert slope == pytest.approx([1.0], abs=1e-3)  # no kink at the knee
    # Highlights keep their hue: the brightest channel is rolled off and the others scale with it.
    mapped = tone_map(np.array([4.0, 2.0, 1.0]))
    assert mapped[1] / mapped[0] == pytest.approx(0.5) and mapped[2] / mapped[0] == pytest.approx(0.25)


def test_hdr_frames_map_reference_white_and_black():
    white_pq = np.full((2, 2, 3), round(float(nits_to_pq(np.array([203.0]))[0]) * 65535), np.uint16)
    white_hlg = np.full((2, 2, 3), round(0.75 * 65535), np.uint16)
    for frame, transfer in ((white_pq, "pq"), (white_hlg, "hlg")):
        sdr = hdr_to_sdr(frame, transfer)
        assert sdr.dtype == np.uint8 and sdr.shape == (2, 2, 3)
        assert np.abs(sdr.astype(int) - 245).max() <= 1  # 0.908 ** (1 / 2.4): white, just below the shoulder's top
        assert hdr_to_sdr(np.zeros_like(frame), transfer).max() == 0
    with pytest.raises(ValueError, match="unknown HDR transfer"):
        hdr_to_sdr(white_pq, "dolby")
