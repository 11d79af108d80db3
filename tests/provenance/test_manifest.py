"""C2PA manifests with c2pa-python: signed on a real MP4, read back, trusted, and broken by tampering."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from reelforge.models.video_io import Video, write_mp4
from reelforge.provenance.manifest import (
    TRAINED_ALGORITHMIC_MEDIA,
    GenerationClaims,
    read_manifest,
    sign_mp4,
)
from reelforge.provenance.signing_keys import development_credentials, watermark_key

CLAIMS = GenerationClaims(
    "video_abc",
    "acme",
    "ft:reelforge-tiny:acme:brand",
    "reelforge-tiny",
    "acme.brand.reelforge-tiny/3",
    "f" * 64,
    12345,
)


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[bytes, bytes, Path]:
    home = tmp_path_factory.mktemp("prov-home")
    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 48, 3), dtype=np.uint8)
    mp4 = write_mp4(Video(frames, 8.0), home / "in.mp4").read_bytes()
    return mp4, sign_mp4(mp4, CLAIMS, development_credentials(home)), home


def test_signed_manifest_states_a_trained_model_made_it(signed):
    _, data, home = signed
    report = read_manifest(data, development_credentials(home).trust_anchor_pem)
    assert report.present and report.state == "Trusted" and report.intact
    assert report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert (
        report.generation["request_id"] == "video_abc" and report.generation["adapter"] == "acme.brand.reelforge-tiny/3"
    )
    assert report.generation["watermark_id"] == 12345


def test_without_the_trust_anchor_the_signature_is_valid_but_untrusted(signed):
    report = read_manifest(signed[1])
    assert report.state == "Valid" and "signingCredential.untrusted" in report.problems


def test_edited_media_data_invalidates_the_manifest(signed):
    _, data, home = signed
    tampered = bytearray(data)
    tampered[data.find(b"mdat") + 64] ^= 0xFF  # one byte of the picture
    report = read_manifest(bytes(tampered), development_credentials(home).trust_anchor_pem)
    assert report.present and not report.intact and "assertion.bmffHash.mismatch" in report.problems


def test_an_unsigned_file_has_no_manifest(signed):
    assert not read_manifest(signed[0]).present


def test_development_keys_are_private_and_stable(tmp_path):
    first = development_credentials(tmp_path)
    assert development_credentials(tmp_path) == first  # made once, then reused
    key_file = next((tmp_path / "provenance").rglob("signer.key"))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = watermark_key(tmp_path)
    assert len(key) == 32 and watermark_key(tmp_path) == key
    assert stat.S_IMODE(os.stat(tmp_path / "provenance" / "watermark.key").st_mode) == 0o600
