"""HDR footage (PQ or HLG, BT.2020) as the SDR BT.709 frames every model here is trained on.

Phones record HDR by default (iPhone: HEVC 10-bit, BT.2020, HLG). Read as if it were SDR, its
code values come out grey and washed out, and a brand's colours are learned wrong. These are the
standard equations, applied per pixel to frames already scaled to the training size:

1. the signal to display light in nits: PQ's EOTF (SMPTE ST 2084), or HLG's inverse OETF and its
   OOTF for a 1000-nit display (ITU-R BT.2100);
2. relative to HDR reference white, 203 nits (ITU-R BT.2408), which becomes SDR's 1.0;
3. BT.2020 primaries to BT.709 in linear light (ITU-R BT.2087), out-of-gamut values clipped;
4. highlights above a knee rolled off smoothly towards 1.0 on the brightest channel, so hues keep;
5. encoded for BT.1886's 2.4 display gamma, as SDR BT.709 video is shown.

Functions take and return float32 arrays of any shape ending in 3 (RGB) unless they say otherwise.
"""

from __future__ import annotations

import functools

import numpy as np

REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR graphics/diffuse white, mapped to SDR 100%
HLG_DISPLAY_PEAK_NITS = 1000.0  # BT.2100's nominal HLG display; its system gamma is 1.2 there
SDR_DISPLAY_GAMMA = 2.4  # BT.1886
KNEE = 0.75  # below this (relative to reference white) SDR light is HDR light, unchanged
ENCODE_LEVELS = 2**16

# ST 2084 constants.
PQ_M1 = 2610 / 16384
PQ_M2 = 2523 / 4096 * 128
PQ_C1 = 3424 / 4096
PQ_C2 = 2413 / 4096 * 32
PQ_C3 = 2392 / 4096 * 32

# BT.2100 HLG constants.
HLG_A = 0.17883277
HLG_B = 1 - 4 * HLG_A
HLG_C = 0.5 - HLG_A * np.log(4 * HLG_A)

BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)
# Linear BT.2020 RGB to linear BT.709 RGB (BT.2087); each row sums to 1, so white stays white.
BT2020_TO_BT709 = np.array(
    [
        [1.6605, -0.5876, -0.0728],
        [-0.1246, 1.1329, -0.0083],
        [-0.0182, -0.1006, 1.1187],
    ],
    np.float32,
)


def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """PQ code value in [0, 1] to display light in cd/m² (0 to 10000)."""
    p = np.power(np.clip(signal, 0.0, 1.0), 1.0 / PQ_M2)
    return 10000.0 * np.power(np.maximum(p - PQ_C1, 0.0) / (PQ_C2 - PQ_C3 * p), 1.0 / PQ_M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """Display light in cd/m² to PQ code value in [0, 1]: the inverse of `pq_to_nits`."""
    y = np.power(np.clip(nits / 10000.0, 0.0, 1.0), PQ_M1)
    return np.power((PQ_C1 + PQ_C2 * y) / (1.0 + PQ_C3 * y), PQ_M2)


def hlg_to_scene_light(signal: np.ndarray) -> np.ndarray:
    """HLG code value in [0, 1] to normalised scene light in [0, 1] (BT.2100's inverse OETF)."""
    e = np.clip(signal, 0.0, 1.0)
    low = e * e / 3.0
    high = (np.exp((e - HLG_C) / HLG_A) + HLG_B) / 12.0
    return np.where(e <= 0.5, low, high)


def hlg_to_nits(rgb_signal: np.ndarray) -> np.ndarray:
    """HLG RGB code values (..., 3) to display light in cd/m² on the nominal 1000-nit display."""
    scene = hlg_to_scene_light(rgb_signal)  # (..., 3)
    luma = scene @ BT2020_LUMA  # (...,)
    gamma = 1.2  # BT.2100's system gamma at 1000 nits
    gain = HLG_DISPLAY_PEAK_NITS * np.power(np.maximum(luma, 1e-9), gamma - 1.0)  # (...,)
    return scene * gain[..., None]  # (..., 3)


def roll_off(x: np.ndarray) -> np.ndarray:
    """Identity up to `KNEE`, then an exponential shoulder with slope 1 at the knee, approaching 1."""
    shoulder = KNEE + (1.0 - KNEE) * (1.0 - np.exp(-(np.maximum(x, KNEE) - KNEE) / (1.0 - KNEE)))
    return np.where(x <= KNEE, x, shoulder)


def tone_map(relative: np.ndarray) -> np.ndarray:
    """Linear light relative to reference white (..., 3) into [0, 1], rolling off the brightest channel."""
    # Pairwise maxima: numpy's reduction over a length-3 last axis is ~10x slower per frame.
    peak = np.maximum(np.maximum(relative[..., 0], relative[..., 1]), relative[..., 2])  # (...,)
    scale = roll_off(peak) / np.maximum(peak, np.float32(1e-9))  # (...,); 1 below the knee
    return np.clip(relative * scale[..., None], 0.0, 1.0)


@functools.cache
def _signal_table(transfer: str) -> np.ndarray:
    """(65536,) float32 per 16-bit code value: PQ light relative to reference white, or HLG scene light.

    Decoding is per pixel and per frame, so the transfer curve is evaluated once per code value.
    """
    signal = np.arange(65536, dtype=np.float64) / 65535.0
    if transfer == "pq":
        return (pq_to_nits(signal) / REFERENCE_WHITE_NITS).astype(np.float32)
    if transfer == "hlg":
        return hlg_to_scene_light(signal).astype(np.float32)
    raise ValueError(f"unknown HDR transfer {transfer!r}; expected 'pq' or 'hlg'")


def hdr_to_sdr(rgb16: np.ndarray, transfer: str) -> np.ndarray:
    """(H, W, 3) uint16 BT.2020 RGB code values, `transfer` "pq" or "hlg" -> (H, W, 3) uint8 SDR BT.709."""
    light = _signal_table(transfer)[rgb16]  # (H, W, 3) float32
    if transfer == "hlg":  # the OOTF: display light = peak x luma^(gamma - 1) x scene light, as in `hlg_to_nits`
        luma = light @ BT2020_LUMA  # (H, W)
        gain = np.power(np.maximum(luma, np.float32(1e-9)), np.float32(0.2))  # (H, W): gamma 1.2
        light *= (gain * np.float32(HLG_DISPLAY_PEAK_NITS / REFERENCE_WHITE_NITS))[..., None]
    relative = light @ BT2020_TO_BT709.T  # (H, W, 3) linear BT.709, relative to reference white
    sdr_linear = tone_map(np.maximum(relative, np.float32(0.0)))  # (H, W, 3) in [0, 1]
    index = (np.sqrt(sdr_linear) * np.float32(ENCODE_LEVELS - 1) + np.float32(0.5)).astype(np.int32)  # (H, W, 3)
    return _encode_table()[index]


@functools.cache
def _encode_table() -> np.ndarray:
    """(ENCODE_LEVELS,) uint8: the square root of SDR linear light in [0, 1] to its BT.1886 code value.

    Indexed by the square root, 2^16 levels keep the step far below one code value even next to
    black, where the curve is steepest, and the table (64 KiB) stays in cache.
    """
    root = np.arange(ENCODE_LEVELS, dtype=np.float64) / (ENCODE_LEVELS - 1)
    return np.round(np.power(root * root, 1.0 / SDR_DISPLAY_GAMMA) * 255.0).astype(np.uint8)
