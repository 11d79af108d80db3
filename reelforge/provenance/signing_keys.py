"""Signing material for C2PA manifests and the watermark key, from the config or made for development.

C2PA needs an end-entity certificate (ES256, digitalSignature, an EKU such as emailProtection)
issued by a CA, plus its private key. An operator points the config at theirs. For tests and the
demo, `development_credentials` makes a throwaway root CA and a leaf under the reelforge home
(0600), never in the repository; verification then trusts that root explicitly.
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from reelforge.errors import UserInputError

DEV_DIR = "provenance"


@dataclass(frozen=True)
class SigningCredentials:
    """PEM chain (leaf first, then issuers), PEM private key, and the trust anchor to verify against."""

    chain_pem: bytes
    key_pem: bytes
    trust_anchor_pem: bytes


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _new_development_chain(organisation: str) -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} development root"),
        ]
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} video signer"),
        ]
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + root.public_bytes(pem)
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key, root.public_bytes(pem)


def development_credentials(home: Path, organisation: str = "reelforge") -> SigningCredentials:
    """The home's development chain, made on first use (0600 key). Not for production: its root is trusted only here."""
    directory = home / DEV_DIR / "dev-credentials"
    if not directory.is_dir():
        # Written aside and renamed into place: replicas starting together all end up with one chain.
        chain, key, root = _new_development_chain(organisation)
        staging = home / DEV_DIR / f".dev-credentials-{secrets.token_hex(4)}"
        (staging / "chain.pem").parent.mkdir(parents=True, exist_ok=True)
        (staging / "chain.pem").write_bytes(chain)
        (staging / "root.pem").write_bytes(root)
        _write_private(staging / "signer.key", key)
        try:
            staging.rename(directory)
        except OSError:  # another process won the race; use its chain
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()
    return SigningCredentials(
        (directory / "chain.pem").read_bytes(),
        (directory / "signer.key").read_bytes(),
        (directory / "root.pem").read_bytes(),
    )


def load_credentials(chain: Path, key: Path, trust_anchor: Path) -> SigningCredentials:
    """An operator's chain, key and trust anchor from PEM files."""
    return SigningCredentials(chain.read_bytes(), key.read_bytes(), trust_anchor.read_bytes())


def watermark_key(home: Path, path: Path | None = None, create: bool = True) -> bytes:
    """The secret the watermark patterns derive from: `path`, else the home's, made on first use (0600) when `create`."""
    path = path or home / DEV_DIR / "watermark.key"
    if not path.is_file() and not create:
        raise UserInputError(f"no watermark key at {path}; give the platform's serve config (--config) or home")
    if not path.is_file():
        # Written whole aside, then hard-linked into place (atomic, refuses to overwrite): of replicas
        # starting together exactly one key wins and every one reads that one, never a half-written file.
        staging = path.with_name(f".{path.name}-{secrets.token_hex(4)}")
        _write_private(staging, secrets.token_bytes(32))
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    key = path.read_bytes()
    if len(key) < 16:
        raise UserInputError(f"watermark key {path} holds {len(key)} bytes; it needs at least 16")
    return key
