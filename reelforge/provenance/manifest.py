"""C2PA manifests on generated MP4s (c2pa-python): signed claims that a trained model made the video.

The manifest holds a `c2pa.created` action with IPTC's `trainedAlgorithmicMedia` digital source
type, and a `com.reelforge.generation` assertion naming the model, the adapter version and the
request (video id). C2PA's BMFF hash binds it to the file's media data, so an edited picture makes
the manifest invalid; a re-encode drops it (the watermark is what survives that).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from reelforge import __version__
from reelforge.provenance.signing_keys import SigningCredentials

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_LABEL = "com.reelforge.generation"
MP4 = "video/mp4"


@dataclass(frozen=True)
class GenerationClaims:
    """What the manifest states about one generated video."""

    request_id: str  # the video id the API returned
    tenant: str
    model: str  # the id the client asked for (base or ft:)
    base_model: str
    adapter: str | None  # registry version key, e.g. acme.brand.reelforge-tiny/3
    adapter_sha256: str | None
    watermark_id: int | None


@dataclass(frozen=True)
class ManifestReport:
    """What reading a file's manifest found."""

    present: bool
    state: str | None = None  # c2pa's validation state: Trusted, Valid or Invalid
    problems: tuple[str, ...] = ()  # validation status codes, e.g. assertion.bmffHash.mismatch
    generation: dict = field(default_factory=dict)
    digital_source_type: str | None = None

    @property
    def intact(self) -> bool:
        """Present and its hashes and signature hold (trusted or not)."""
        return self.present and self.state in ("Trusted", "Valid")


def _manifest(claims: GenerationClaims) -> dict:
    return {
        "claim_generator_info": [{"name": "reelforge", "version": __version__}],
        "title": f"{claims.request_id}.mp4",
        "format": MP4,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "reelforge", "version": __version__},
                            "parameters": {"model": claims.base_model},
                        }
                    ]
                },
            },
            {
                "label": GENERATION_LABEL,
                "data": {
                    "request_id": claims.request_id,
                    "tenant": claims.tenant,
                    "model": claims.model,
                    "base_model": claims.base_model,
                    "adapter": claims.adapter,
                    "adapter_sha256": claims.adapter_sha256,
                    "watermark_id": claims.watermark_id,
                },
            },
        ],
    }


def sign_mp4(mp4: bytes, claims: GenerationClaims, credentials: SigningCredentials) -> bytes:
    """The MP4 with a signed C2PA manifest embedded."""
    import c2pa

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", credentials.chain_pem, credentials.key_pem, None))
    builder = c2pa.Builder(json.dumps(_manifest(claims)))
    signed = io.BytesIO()
    try:
        builder.sign(signer, MP4, io.BytesIO(mp4), signed)
    finally:
        builder.close()
        signer.close()
    return signed.getvalue()


def read_manifest(mp4: bytes, trust_anchor_pem: bytes | None = None) -> ManifestReport:
    """Read and validate the file's manifest; with a trust anchor, a chain to it reads `Trusted`."""
    import c2pa

    context = None
    if trust_anchor_pem is not None:
        settings = c2pa.Settings.from_dict(
            {"trust": {"trust_anchors": trust_anchor_pem.decode()}, "verify": {"verify_trust": True}}
        )
        context = c2pa.Context(settings)
    try:
        reader = c2pa.Reader(MP4, io.BytesIO(mp4), context=context)
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__:
            return ManifestReport(present=False)
        return ManifestReport(present=True, state="Invalid", problems=(f"unreadable: {exc}",))
    try:
        store = json.loads(reader.json())
    finally:
        reader.close()
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    assertions = {a.get("label"): a.get("data", {}) for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    source = next((a.get("digitalSourceType") for a in actions if a.get("action") == "c2pa.created"), None)
    problems = tuple(s.get("code", "") for s in store.get("validation_status") or [])
    return ManifestReport(True, store.get("validation_state"), problems, assertions.get(GENERATION_LABEL, {}), source)
