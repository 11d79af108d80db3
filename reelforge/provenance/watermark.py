"""An invisible, keyed watermark in a video's luma that survives re-encoding, halving and cropping.

Method: spread spectrum in low spatial frequencies, modulated in time. Each of the 48 payload bits
(and one pilot) owns a pattern W_k(t, y, x) = G_k(y, x) * s_k(t):

* G_k is a keyed random field on a coarse GRID x GRID lattice, interpolated bilinearly over
  *normalised* frame coordinates. Low frequencies are what H.264 quantisation and downscaling keep,
  and normalised coordinates make the pattern defined at any resolution, so a halved video is read
  with the same pattern evaluated at its own size.
* s_k is a keyed +-1 sequence over frames. Static content (background, logos) is constant in time
  and is removed by subtracting each pixel's temporal mean before reading; what is left of the
  picture is motion, which acts as noise.

The video gets `strength * (pilot + sum_k b_k W_k)` added to R, G and B alike (luma only, no hue
shift). Reading is least squares of the demeaned luma on all 49 patterns at once, so patterns do
not interfere. A crop is handled by trying crop hypotheses (how much was cut, where) and keeping
the one whose pilot is strongest. The payload is a 32-bit id plus a CRC-16, so a wrong read is
rejected rather than mapped to somebody else's request.

Why not DCT-block or DWT schemes (e.g. invisible-watermark's dwtDct)? Their blocks sit on a pixel
grid that halving and cropping move; tiny videos (48x32) also hold too few blocks for a payload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

GRID = 6  # lattice cells per side: coarse enough to survive halving and a 10% crop
ID_BITS, CRC_BITS = 32, 16
PAYLOAD_BITS = ID_BITS + CRC_BITS
DEFAULT_STRENGTH = 0.6  # per-pattern amplitude in 8-bit levels (measured: PSNR ~42 dB, see bench/watermark.py)
MOTION_LEVELS = 6.0  # a pixel whose luma varies more than this over the clip is treated as moving content
MAX_READ_SIDE = 64  # reading works on a downscaled copy: patterns are low-frequency, pixels cost time
# (kept fraction, anchor) hypotheses tried when reading: none cut, or up to ~15% cut at an edge/corner/centre.
CROP_KEEP = (1.0, 0.95, 0.9, 0.85)
ANCHORS = ((0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0), (0.0, 0.5), (1.0, 0.5))


@dataclass(frozen=True)
class WatermarkRead:
    """What reading found: the id (None when nothing valid was read), pilot significance and crop hypothesis."""

    payload_id: int | None
    pilot_z: float
    crop: tuple[float, float, float, float]  # (y0, y1, x0, x1) in normalised original coordinates

    @property
    def found(self) -> bool:
        return self.payload_id is not None


def crc16(value: int) -> int:
    """CRC-16/CCITT-FALSE of a 32-bit id (big-endian)."""
    crc = 0xFFFF
    for byte in value.to_bytes(4, "big"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def payload_bits(payload_id: int) -> np.ndarray:
    """The 48 bits (+1/-1) for an id: 32 id bits then its CRC-16."""
    if not 0 <= payload_id < 2**ID_BITS:
        raise ValueError(f"watermark id must fit {ID_BITS} bits, got {payload_id}")
    word = (payload_id << CRC_BITS) | crc16(payload_id)
    bits = [(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)]
    return np.array([1.0 if b else -1.0 for b in bits])  # (48,)


def decode_bits(signs: np.ndarray) -> int | None:
    """Bits (+-1) back to the id, or None when the CRC does not match."""
    word = 0
    for s in signs:
        word = (word << 1) | (1 if s > 0 else 0)
    payload_id, crc = word >> CRC_BITS, word & 0xFFFF
    return payload_id if crc16(payload_id) == crc else None


def _rng(key: bytes, label: str) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(key + label.encode()).digest()[:8], "big")
    return np.random.default_rng(seed)


def _lattices(key: bytes) -> np.ndarray:
    """The keyed coarse fields of the pilot (index 0) and every payload bit: (1 + 48, GRID, GRID)."""
    fields = _rng(key, "lattices").standard_normal((1 + PAYLOAD_BITS, GRID, GRID))
    return fields / fields.std(axis=(1, 2), keepdims=True)


def _temporal(key: bytes, frames: int) -> np.ndarray:
    """Keyed +-1 sequences, balanced so a static picture sums to zero: (1 + 48, F)."""
    rng = _rng(key, f"temporal-{frames}")
    signs = np.tile(np.array([1.0, -1.0]), (1 + PAYLOAD_BITS, (frames + 1) // 2))[:, :frames]
    return rng.permuted(signs, axis=1)


def _sample(lattices: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear values of every lattice at normalised coordinates (cell centres at (i + 0.5) / GRID)."""
    gy = np.clip(ys * GRID - 0.5, 0, GRID - 1)  # (H,)
    gx = np.clip(xs * GRID - 0.5, 0, GRID - 1)  # (W,)
    y0, x0 = np.floor(gy).astype(int), np.floor(gx).astype(int)
    y1, x1 = np.minimum(y0 + 1, GRID - 1), np.minimum(x0 + 1, GRID - 1)
    wy, wx = (gy - y0)[:, None], (gx - x0)[None, :]  # (H, 1), (1, W)
    top = lattices[:, y0][:, :, x0] * (1 - wx) + lattices[:, y0][:, :, x1] * wx  # (K, H, W)
    bottom = lattices[:, y1][:, :, x0] * (1 - wx) + lattices[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy  # (K, H, W)


def _coordinates(size: int, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    return start + (np.arange(size) + 0.5) / size * (stop - start)


def watermark_signal(
    key: bytes, payload_id: int, frames: int, height: int, width: int, strength: float = DEFAULT_STRENGTH
) -> np.ndarray:
    """The luma offset to add to a (F, H, W) video: (F, H, W) float32."""
    weights = np.concatenate([[1.0], payload_bits(payload_id)])  # (49,)
    spatial = _sample(_lattices(key), _coordinates(height), _coordinates(width))  # (49, H, W)
    temporal = _temporal(key, frames)  # (49, F)
    return (strength * np.einsum("k,kf,khw->fhw", weights, temporal, spatial)).astype(np.float32)


def embed_watermark(frames: np.ndarray, key: bytes, payload_id: int, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 with the watermark for `payload_id` added to their luma."""
    f, h, w, _ = frames.shape
    signal = watermark_signal(key, payload_id, f, h, w, strength)  # (F, H, W)
    marked = frames.astype(np.float32) + signal[..., None]  # same offset on R, G, B: luma only
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)


def _luma(frames: np.ndarray) -> np.ndarray:
    rgb = frames.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]  # (F, H, W)


def _shrink(luma: np.ndarray, max_side: int) -> np.ndarray:
    """Box-average down to at most `max_side` per side (the patterns are far coarser than that)."""
    f, h, w = luma.shape
    factor = max(1, int(np.ceil(max(h, w) / max_side)))
    h2, w2 = h // factor, w // factor
    return luma[:, : h2 * factor, : w2 * factor].reshape(f, h2, factor, w2, factor).mean(axis=(2, 4))


def _solve(
    spatial: np.ndarray, weights: np.ndarray, gram_t: np.ndarray, projected: np.ndarray, energy: float, rows: int
) -> tuple[np.ndarray, float]:
    """Least squares of the residual on the separable patterns; returns (coefficients, pilot z).

    With A[(f, p), k] = T[k, f] S[k, p]: AtA = (T Tt) * (S St) elementwise and (At r)[k] = sum_p S[k, p] (T R)[k, p],
    so no (F*H*W, K) design matrix is ever built.
    """
    flat = spatial.reshape(spatial.shape[0], -1) * weights  # (K, P): moving pixels weigh nothing
    gram = gram_t * (flat @ flat.T)  # (K, K)
    rhs = np.einsum("kp,kp->k", flat, projected)  # (K,)
    inverse = np.linalg.pinv(gram)
    coef = inverse @ rhs
    residual_energy = max(energy - float(coef @ rhs), 1e-9)
    sigma2 = residual_energy / max(1, rows - len(coef))
    z = float(coef[0] / np.sqrt(max(inverse[0, 0] * sigma2, 1e-12)))
    return coef, z


def _hypotheses() -> list[tuple[float, float, float, float]]:
    """Crop boxes (y0, y1, x0, x1) to try: none, then each kept fraction at each anchor, on both axes or one."""
    boxes = [(0.0, 1.0, 0.0, 1.0)]
    for keep in CROP_KEEP[1:]:
        for ay, ax in ANCHORS:
            y0, x0 = ay * (1 - keep), ax * (1 - keep)
            for box in ((y0, y0 + keep, x0, x0 + keep), (0.0, 1.0, x0, x0 + keep), (y0, y0 + keep, 0.0, 1.0)):
                if box not in boxes:
                    boxes.append(box)
    return boxes


def read_watermark(frames: np.ndarray, key: bytes, candidates: int = 8) -> WatermarkRead:
    """Read the watermark from (F, H, W, 3) frames at any size, trying crop hypotheses; never raises.

    The `candidates` hypotheses with the strongest pilot are decoded in turn; the first whose
    CRC-16 holds is the answer (a random read passes with probability 2**-16 per candidate).
    """
    luma = _shrink(_luma(frames), MAX_READ_SIDE)  # (F, h, w)
    f, h, w = luma.shape
    if f < 4:
        return WatermarkRead(None, 0.0, (0.0, 1.0, 0.0, 1.0))
    residual = (luma - luma.mean(axis=0, keepdims=True)).reshape(f, -1)  # (F, P): static content removed
    # Pixels that moving content crosses vary by tens of levels, the watermark by a few: leave them out.
    spread = residual.std(axis=0)  # (P,)
    weights = (spread < max(MOTION_LEVELS, 3.0 * float(np.median(spread)))).astype(np.float64)  # (P,)
    residual = residual * weights
    temporal = _temporal(key, f)
    temporal = temporal - temporal.mean(axis=1, keepdims=True)  # demeaned like the picture
    projected = temporal @ residual  # (K, P)
    gram_t = temporal @ temporal.T  # (K, K)
    energy = float((residual**2).sum())
    lattices = _lattices(key)
    reads = []
    for box in _hypotheses():
        spatial = _sample(lattices, _coordinates(h, box[0], box[1]), _coordinates(w, box[2], box[3]))  # (K, h, w)
        coef, z = _solve(spatial, weights, gram_t, projected, energy, int(weights.sum()) * f)
        reads.append((z, box, coef))
    reads.sort(key=lambda r: -r[0])
    for z, box, coef in reads[:candidates]:
        payload_id = decode_bits(coef[1:])
        if payload_id is not None:
            return WatermarkRead(payload_id, z, box)
    z, box, _ = reads[0]
    return WatermarkRead(None, z, box)
