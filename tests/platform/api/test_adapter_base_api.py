"""A fine-tuned model trained on another checkpoint than the served one is a 400 at the door.

The API app through FastAPI's TestClient with real stores and a real MLflow registry; the
generators' capabilities are the one stand-in (see `ApiClients`): here they carry the served base's
fingerprint, so a mismatch is reached without serving two checkpoints. That the fingerprint of a
loaded checkpoint is what a trained adapter's card records is tested in
tests/models/test_base_fingerprint.py and, through Ray Train with ZeRO-3, in tests/jobs/test_finetune.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from reelforge.jobs.adapter_registry import import_adapter, promote
from reelforge.models.lora import ADAPTER_CARD_FILE
from reelforge.platform.stores.adapter_digests import AdapterDigestStore
from tests.harness import BASE, FIXTURE_ADAPTERS, PROMPT, TINY, ApiClients, assert_openai_error

TRAINED_ON = "a" * 64
SERVED = replace(TINY, fingerprint=TRAINED_ON)
ANOTHER_CHECKPOINT = replace(TINY, fingerprint="b" * 64)


def _adapter(tmp_path: Path, fingerprint: str | None) -> Path:
    """The shipped fixture adapter, its card saying it was trained on `fingerprint` (None: says nothing)."""
    directory = tmp_path / f"adapter-{fingerprint or 'legacy'}"
    shutil.copytree(FIXTURE_ADAPTERS / "lower-third-orange", directory)
    card = json.loads((directory / ADAPTER_CARD_FILE).read_text())
    card["base_fingerprint"] = fingerprint
    (directory / ADAPTER_CARD_FILE).write_text(json.dumps(card))
    return directory


def _registered(api: ApiClients, directory: Path, suffix: str) -> tuple[str, str | None]:
    """Import and promote; (the ft: model id, the base fingerprint the platform recorded for it)."""
    settings = api.services.videos.settings
    version = import_adapter(settings, "acme", suffix, BASE, directory)
    promote(settings, version.name, version.version)
    record = AdapterDigestStore(settings.resolved_database_url).expected(version.name, version.version)
    return version.fine_tuned_model, record.base_fingerprint


@pytest.mark.parametrize(("caps", "accepted"), [(SERVED, True), (ANOTHER_CHECKPOINT, False)], ids=["same", "other"])
def test_a_request_for_an_adapter_of_another_checkpoint_is_refused(tmp_path, caps, accepted):
    api = ApiClients(tmp_path / "home", caps=caps)
    model, recorded = _registered(api, _adapter(tmp_path, TRAINED_ON), "look")
    assert recorded == TRAINED_ON  # recorded at registration, from the card
    response = api.acme.post("/v1/videos", json={"prompt": PROMPT, "model": model})
    if accepted:
        assert response.status_code == 200, response.text
        return
    error = assert_openai_error(response, 400, "invalid_adapter", "model")
    assert "another checkpoint" in error["message"] and "aaaaaaaaaaaa" in error["message"]
    assert api.acme.get("/v1/videos").json()["data"] == []  # nothing queued


def test_versions_registered_without_a_fingerprint_are_served_as_before(tmp_path):
    api = ApiClients(tmp_path / "home", caps=ANOTHER_CHECKPOINT)
    model, recorded = _registered(api, _adapter(tmp_path, None), "legacy")
    assert recorded is None
    response = api.acme.post("/v1/videos", json={"prompt": PROMPT, "model": model})
    assert response.status_code == 200, response.text
