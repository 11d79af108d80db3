"""Every video the API serves carries four marks: the visible AI-content label and the `AIGC`
metadata of GB 45438-2025, a signed C2PA manifest and a watermark that `reelforge verify` maps
back to its tenant and request, also after a re-encode; a tampered file fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openai
import pytest
import yaml

from reelforge.models.video_io import Video, read_video, write_mp4
from reelforge.platform.stores.audit_log import AuditLog
from tests.harness import BASE, PROMPT, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(api_platform, tmp_path_factory) -> tuple[Path, str, Path]:
    """A 128x128 video made through the API by tenant `provenant`, and a config file for `verify`."""
    key = api_platform.tenants.create("provenant")[1]
    client = openai.OpenAI(base_url=api_platform.base_url, api_key=key, max_retries=0)
    video = client.videos.create_and_poll(prompt=PROMPT, model=BASE, size="128x128", seconds="2", poll_interval_ms=100)
    assert video.status == "completed", video.error
    folder = tmp_path_factory.mktemp("provenance")
    path = folder / "served.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump(api_platform.config.model_dump(mode="json")))
    return path, video.id, config


def _verify(path: Path, config: Path, monkeypatch, capsys) -> tuple[int, dict]:
    code, out, err = run_cli(["verify", str(path), "--config", str(config), "--json"], monkeypatch, capsys)
    return code, json.loads(out)


def test_served_video_verifies_and_names_its_tenant_and_request(served, api_platform, monkeypatch, capsys):
    path, video_id, config = served
    code, report = _verify(path, config, monkeypatch, capsys)
    assert code == 0 and report["verdict"] == "verified", report
    manifest = report["manifest"]
    assert manifest["state"] == "Trusted"
    assert manifest["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert manifest["generation"]["request_id"] == video_id and manifest["generation"]["model"] == BASE
    assert report["owner"]["tenant"] == "provenant" and report["owner"]["video_id"] == video_id
    assert report["watermark"]["payload_id"] == manifest["generation"]["watermark_id"]
    completed = [
        e for e in AuditLog(api_platform.config.database_url).events("provenant")[0] if e.action == "video.completed"
    ]
    assert completed and completed[-1].details["video_sha256"]  # the served bytes are what was audited


def test_served_video_carries_all_four_marks_present_and_valid(served, monkeypatch, capsys):
    from reelforge.provenance.aigc_metadata import FIELDS
    from reelforge.provenance.explicit_label import detect_label
    from reelforge.provenance.label_policy import ExplicitLabelPolicy

    path, video_id, config = served
    _, report = _verify(path, config, monkeypatch, capsys)
    marks = report["marks"]
    assert {name: (m["present"], m["valid"]) for name, m in marks.items()} == {
        "explicit_label": (True, True),
        "aigc_metadata": (True, True),
        "c2pa": (True, True),
        "watermark": (True, True),
    }, marks
    aigc = marks["aigc_metadata"]["detail"]["AIGC"]
    assert set(FIELDS) <= set(aigc) and aigc["Label"] == "1" and aigc["ProduceID"] == video_id
    # In the pixels: the label at the configured size (5% of 128 px, under the 8 px floor) for 2 s.
    video = read_video(path)
    found = detect_label(video.frames, video.fps, ExplicitLabelPolicy())
    assert found.valid and found.labelled_seconds >= 2.0 and found.text_height_px >= 8
    assert marks["explicit_label"]["detail"]["text"] == "AI生成"


def test_reencoded_copy_is_still_identified_by_its_watermark(served, monkeypatch, capsys, tmp_path):
    path, video_id, config = served
    reencoded = write_mp4(read_video(path), tmp_path / "copy.mp4", crf=30)  # what a re-upload does: manifest gone
    code, report = _verify(reencoded, config, monkeypatch, capsys)
    assert code == 0 and report["verdict"] == "watermark-only", report
    assert report["manifest"]["present"] is False and report["owner"]["video_id"] == video_id


def test_tampered_or_foreign_files_fail_verification(served, monkeypatch, capsys, tmp_path):
    path, _, config = served
    data = bytearray(path.read_bytes())
    data[data.find(b"mdat") + 200] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    code, report = _verify(tampered, config, monkeypatch, capsys)
    assert (
        code == 3
        and report["verdict"] == "tampered"
        and "assertion.bmffHash.mismatch" in report["manifest"]["problems"]
    )

    foreign = write_mp4(Video(np.full((16, 64, 64, 3), 90, np.uint8), 8.0), tmp_path / "foreign.mp4")
    code, report = _verify(foreign, config, monkeypatch, capsys)
    assert code == 3 and report["verdict"] == "unmarked"
    code, _, err = run_cli(["verify", str(tmp_path / "missing.mp4"), "--config", str(config)], monkeypatch, capsys)
    assert code == 2 and "does not exist" in err
    elsewhere = tmp_path / "elsewhere.yaml"  # a machine without the platform's keys: said so, no new key made
    elsewhere.write_text(yaml.safe_dump({"home": str(tmp_path / "empty-home")}))
    code, _, err = run_cli(["verify", str(path), "--config", str(elsewhere)], monkeypatch, capsys)
    assert (
        code == 2
        and "no watermark key" in err
        and not (tmp_path / "empty-home" / "provenance" / "watermark.key").exists()
    )
