"""Schema migrations on SQLite and PostgreSQL: an empty database, one made by the schema before
migrations existed (holding rows of every table), concurrent starts, and a database newer than the code."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reelforge.platform.stores.audit_log import AuditLog
from reelforge.platform.stores.database import create_platform_engine, dispose_engine, engine_for
from reelforge.platform.stores.files import FileStore
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
from reelforge.platform.stores.migrations import (
    VERSION_TABLE,
    DatabaseSchemaError,
    current_revision,
    head_revision,
    upgrade,
)
from reelforge.platform.stores.rate_windows import RequestRateLimiter
from reelforge.platform.stores.schema import metadata
from reelforge.platform.stores.tenants import TenantStore, hash_key
from reelforge.platform.stores.usage import UsageMeter
from reelforge.platform.stores.video_jobs import VideoJobStore
from reelforge.platform.stores.watermarks import WatermarkRegistry
from tests.harness import run_cli

BEFORE_MIGRATIONS = Path(__file__).resolve().parents[2] / "fixtures" / "schema_before_migrations"
KEY = "rf-acme-old-key-made-before-migrations-0123456789abcdef"

# One row per table, as the platform wrote them before migrations (column names of that schema).
ROWS = [
    "INSERT INTO tenants (name, created_at, requests_per_minute, concurrent_jobs) VALUES ('acme', 1.0, 30, NULL)",
    f"INSERT INTO api_keys (key_hash, tenant, display, created_at, revoked_at) VALUES ('{hash_key(KEY)}', 'acme', 'rf-acme-...cdef', 1.0, NULL)",
    "INSERT INTO videos (id, tenant, model, base_model, adapter, deployment, prompt, seconds, size, num_frames, fps, seed, "
    "steps, guidance, status, progress, created_at, deleted, files_removed, attempts, timings) VALUES ('video_old', 'acme', "
    "'reelforge-tiny', 'reelforge-tiny', NULL, 'generator-reelforge-tiny', 'a red circle', '2', '32x32', 17, 8.0, 7, NULL, NULL, "
    "'completed', 100, 2.0, false, false, 1, '{\"total_s\": 1.5}')",
    "INSERT INTO files (id, tenant, filename, purpose, bytes, sha256, created_at, status, status_details, report, deleted) "
    "VALUES ('file-old', 'acme', 'footage.zip', 'fine-tune', 1234, 'ab', 3.0, 'processed', '1 video accepted', "
    '\'{"accepted": [], "rejected": []}\', false)',
    "INSERT INTO fine_tuning_jobs (id, tenant, model, training_file, suffix, seed, hyperparameters, config, metadata, "
    "auto_promote, status, created_at, cancel_requested, workers, metered) VALUES ('ftjob-old', 'acme', 'reelforge-tiny', "
    "'file-old', 'look', 3, '{\"n_epochs\": \"auto\"}', '{\"steps\": 10}', '{\"team\": \"ads\"}', false, 'succeeded', 4.0, "
    "false, 1, true)",
    "INSERT INTO fine_tuning_events (job_id, created_at, level, type, message, data) VALUES ('ftjob-old', 5.0, 'info', "
    "'message', 'Created fine-tuning job', NULL)",
    "INSERT INTO fine_tuning_checkpoints (job_id, step, created_at, model_id, metrics) VALUES ('ftjob-old', 10, 6.0, "
    "'ft:reelforge-tiny:acme:look@1', '{\"train_loss\": 0.5}')",
    "INSERT INTO audit_events (tenant, at, actor, action, subject, details) VALUES ('acme', 7.0, 'cli:root', "
    "'video.requested', 'video_old', '{\"seed\": 7}')",
    "INSERT INTO usage_records (tenant, kind, job_id, model, adapter, device, seconds, frames, day, recorded_at) VALUES "
    "('acme', 'generation', 'video_old', 'reelforge-tiny', NULL, 'cpu', 1.5, 17, '1970-01-01', 8.0)",
    "INSERT INTO rate_windows (tenant, window_start, count) VALUES ('acme', 0.0, 4)",
    "INSERT INTO watermarks (id, video_id, tenant, created_at) VALUES (4242, 'video_old', 'acme', 9.0)",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """An empty database of each kind the platform runs on."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'platform.db'}"
        yield url
        dispose_engine(url)
    else:
        yield request.getfixturevalue("postgres_url")


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def build_database_before_migrations(url: str) -> None:
    """The schema `create_all` made before migrations, with one row in every table."""
    statements = (BEFORE_MIGRATIONS / f"{dialect_of(url)}.sql").read_text().split("\n\n")
    engine = create_platform_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            statement = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if statement:
                connection.exec_driver_sql(statement.rstrip(";"))
        for row in ROWS:
            connection.exec_driver_sql(row)
    engine.dispose()


def test_an_empty_database_is_migrated_to_exactly_the_models_schema(database_url):
    engine = engine_for(database_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        # The migrations and the row classes describe the same tables, columns, types and indexes.
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    AuditLog(database_url).record("acme", "test", "video.requested", "video_1")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))
    assert upgrade(engine) == head_revision()  # a second upgrade is a no-op


def test_a_database_made_before_migrations_keeps_every_row(database_url):
    build_database_before_migrations(database_url)
    assert current_revision(create_platform_engine(database_url)) is None

    assert TenantStore(database_url).authenticate(f"Bearer {KEY}").name == "acme"  # the first store migrates
    assert current_revision(engine_for(database_url)) == head_revision()

    tenant = TenantStore(database_url).get("acme")
    assert (tenant.requests_per_minute, tenant.active_keys) == (30, ("rf-acme-...cdef",))
    video = VideoJobStore(database_url).get("acme", "video_old")
    assert (video.status, video.seed, video.timings, video.width) == ("completed", 7, {"total_s": 1.5}, 32)
    file = FileStore(database_url).get("acme", "file-old")
    assert (file.status, file.report) == ("processed", {"accepted": [], "rejected": []})
    fine_tunes = FineTuneStore(database_url)
    job = fine_tunes.get("acme", "ftjob-old")
    assert (job.status, job.metadata_, job.config) == ("succeeded", {"team": "ads"}, {"steps": 10})
    assert [e.message for e in fine_tunes.events("acme", "ftjob-old", None, 10)[0]] == ["Created fine-tuning job"]
    assert fine_tunes.checkpoints("acme", "ftjob-old", None, 10)[0][0].metrics == {"train_loss": 0.5}
    assert [(e.action, e.details) for e in AuditLog(database_url).events("acme")[0]] == [
        ("video.requested", {"seed": 7})
    ]
    assert UsageMeter(database_url).summary("acme")[0].frames == 17
    assert WatermarkRegistry(database_url).owner(4242).video_id == "video_old"
    assert RequestRateLimiter(database_url).hit("acme", 30, now=30.0).used == 5  # the old window's count went on
    # New rows go in beside the old ones, and the audit log is still append-only.
    AuditLog(database_url).record("acme", "test", "video.deleted", "video_old")
    assert len(AuditLog(database_url).events("acme")[0]) == 2
    with pytest.raises(DBAPIError, match="append-only"), engine_for(database_url).begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'someone else'"))


def test_replicas_starting_together_migrate_once(database_url):
    engines = [create_platform_engine(database_url) for _ in range(4)]
    results, errors = [], []

    def start(engine):
        try:
            results.append(upgrade(engine))
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [head_revision()] * 4
    with engines[0].connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
    for engine in engines:
        engine.dispose()


def test_a_database_from_a_newer_reelforge_is_refused_with_a_clear_error(database_url):
    engine = create_platform_engine(database_url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(DatabaseSchemaError, match="revision '9999', which this reelforge does not know"):
        upgrade(engine)
    engine.dispose()


def test_db_upgrade_command_reports_the_revision(settings, monkeypatch, capsys):
    code, _, err = run_cli(["db", "upgrade"], monkeypatch, capsys)
    assert code == 0 and f"database at revision {head_revision()} (was empty)" in err
    code, _, err = run_cli(["db", "upgrade"], monkeypatch, capsys)
    assert code == 0 and "(up to date)" in err
    code, out, _ = run_cli(["db", "current"], monkeypatch, capsys)
    assert code == 0 and out.strip() == head_revision()
