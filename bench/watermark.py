"""Watermark robustness and cost: detection rate under re-encoding, halving and a 10% crop, PSNR,
false positives on unmarked videos, and seconds added per video; each with the visible AI-content
label (GB 45438-2025) off and on, side by side, as the stamper draws it before the watermark.

    python -m bench.watermark [--videos 24] [--strength 0.6]

Videos are shapes-world clips (what reelforge-tiny makes) at the tiny model's sizes. Each is
watermarked with a random id, encoded as the server encodes (H.264 CRF 18), attacked, decoded and
read. "Detected" means the exact id came back (CRC-checked); anything else counts as a miss.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.report import save_result
from reelforge.models.tiny.footage import write_footage
from reelforge.models.video_io import Video, read_video, write_mp4
from reelforge.provenance.explicit_label import draw_label
from reelforge.provenance.label_policy import ExplicitLabelPolicy
from reelforge.provenance.manifest import GenerationClaims, sign_mp4
from reelforge.provenance.signing_keys import development_credentials
from reelforge.provenance.watermark import (
    DEFAULT_STRENGTH,
    embed_watermark,
    read_watermark,
)

SIZES = ((32, 48), (64, 64), (128, 128))  # (H, W): the tiny model's default and its larger sizes


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    out = []
    for frame in frames:
        image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out.append(image.reformat(width=width, height=height, interpolation="AREA").to_ndarray(format="rgb24"))
    return np.stack(out)


def _reencode(frames: np.ndarray, fps: float, crf: int, work: Path) -> np.ndarray:
    path = write_mp4(Video(frames, fps), work / f"attack-{secrets.token_hex(4)}.mp4", crf=crf)
    return read_video(path).frames


def attacks(frames: np.ndarray, fps: float, work: Path) -> dict[str, np.ndarray]:
    """The served MP4 and what a re-uploader might do to it."""
    served = _reencode(frames, fps, 18, work)
    f, h, w, _ = served.shape
    ch, cw = int(round(h * 0.9)) // 2 * 2, int(round(w * 0.9)) // 2 * 2
    return {
        "served (crf 18)": served,
        "re-encoded crf 30": _reencode(served, fps, 30, work),
        "re-encoded crf 35": _reencode(served, fps, 35, work),
        "halved": _reencode(_resize(served, max(2, h // 2 // 2 * 2), max(2, w // 2 // 2 * 2)), fps, 23, work),
        "cropped 10% (corner)": _reencode(served[:, :ch, :cw], fps, 23, work),
        "cropped 10% (centre)": _reencode(
            served[:, (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw], fps, 23, work
        ),
    }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _measure(sources, height, width, labelled, key, strength, credentials, work) -> dict:
    """One size, labels off or on: detection under each attack, false positives, PSNR and costs."""
    detected: dict[str, int] = {}
    false_positives, psnrs, embed_s, read_s, sign_s, encode_s, label_s, generate_like = 0, [], [], [], [], [], [], []
    for source in sources:
        frames = _resize(source.frames, height, width)
        if labelled:
            started = time.perf_counter()
            frames = draw_label(frames, source.fps, ExplicitLabelPolicy())
            label_s.append(time.perf_counter() - started)
        payload = secrets.randbits(32)
        started = time.perf_counter()
        marked = embed_watermark(frames, key, payload, strength)
        embed_s.append(time.perf_counter() - started)
        psnrs.append(psnr(frames, marked))
        started = time.perf_counter()
        mp4 = write_mp4(Video(marked, source.fps), work / "served.mp4").read_bytes()
        encode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        sign_mp4(mp4, GenerationClaims("video_x", "acme", "m", "m", None, None, payload), credentials)
        sign_s.append(time.perf_counter() - started)
        for name, attacked in attacks(marked, source.fps, work).items():
            started = time.perf_counter()
            found = read_watermark(attacked, key)
            read_s.append(time.perf_counter() - started)
            detected[name] = detected.get(name, 0) + int(found.payload_id == payload)
        clean = _reencode(frames, source.fps, 18, work)
        false_positives += int(read_watermark(clean, key).found)
        generate_like.append(read_watermark(marked, secrets.token_bytes(32)).found)  # wrong key
    return {
        "detection_rate": {k: round(v / len(sources), 3) for k, v in detected.items()},
        "false_positive_rate_unmarked": round(false_positives / len(sources), 3),
        "found_with_wrong_key": int(sum(generate_like)),
        "psnr_db_mean": round(float(np.mean(psnrs)), 2),
        "psnr_db_min": round(float(np.min(psnrs)), 2),
        "label_ms_mean": round(1000 * float(np.mean(label_s)), 2) if label_s else 0.0,
        "embed_ms_mean": round(1000 * float(np.mean(embed_s)), 2),
        "c2pa_sign_ms_mean": round(1000 * float(np.mean(sign_s)), 2),
        "encode_ms_mean (baseline)": round(1000 * float(np.mean(encode_s)), 2),
        "provenance_vs_encode": round(
            float(np.mean(embed_s) + np.mean(sign_s) + (np.mean(label_s) if label_s else 0.0))
            / float(np.mean(encode_s)),
            3,
        ),
        "read_ms_mean": round(1000 * float(np.mean(read_s)), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    """Measure and print; saves bench-output/watermark.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--strength", type=float, default=DEFAULT_STRENGTH)
    parser.add_argument("--out", type=Path, default=Path("bench-output/watermark.json"))
    args = parser.parse_args(argv)
    key = secrets.token_bytes(32)
    results: dict = {"bench": "watermark", "strength": args.strength, "videos": args.videos, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        credentials = development_credentials(work / "home")
        clips = write_footage(work / "footage", count=args.videos, seed=3)
        sources = [read_video(c.video) for c in clips]
        for height, width in SIZES:
            size = f"{width}x{height}"
            results["sizes"][size] = {}
            for labels in ("labels_off", "labels_on"):
                row = _measure(sources, height, width, labels == "labels_on", key, args.strength, credentials, work)
                results["sizes"][size][labels] = row
                print(f"{size} {labels}: {row}")
    return save_result(results, args.out)


if __name__ == "__main__":
    main()
