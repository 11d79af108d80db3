"""The audit log on real databases: append-only (the database refuses rewrites), tenant-scoped,
paged, exported as JSON lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reelforge.platform.stores.audit_log import VIDEO_REFUSED, VIDEO_REQUESTED, AuditLog
from reelforge.platform.stores.database import engine_for


def exercise(url: str) -> None:
    log = AuditLog(url)
    for i in range(5):
        log.record("acme", "rf-acme-...abcd", VIDEO_REQUESTED, f"video_{i}", prompt=f"p{i}")
    log.record("globex", "rf-globex-...wxyz", VIDEO_REFUSED, "refusal-1", rule="blocked term 'x'")
    page, more = log.events("acme", limit=3)
    assert [e.subject for e in page] == ["video_0", "video_1", "video_2"] and more
    rest, more = log.events("acme", after=page[-1].id, limit=3)
    assert [e.subject for e in rest] == ["video_3", "video_4"] and not more
    assert [e.action for e in log.events("globex")[0]] == [VIDEO_REFUSED]
    buffer = io.StringIO()
    assert log.export_jsonl("acme", buffer) == 5
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert (
        lines[0]["details"] == {"prompt": "p0"}
        and lines[0]["actor"] == "rf-acme-...abcd"
        and lines[0]["object"] == "audit.event"
    )
    for statement in ("UPDATE audit_events SET tenant = 'globex'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine_for(url).begin() as connection:
                connection.execute(text(statement))
    assert len(log.events("acme")[0]) == 5


def test_audit_log_on_sqlite(tmp_path: Path):
    exercise(f"sqlite:///{tmp_path / 'audit.db'}")


def test_audit_log_on_postgres(postgres_url):
    exercise(postgres_url)
