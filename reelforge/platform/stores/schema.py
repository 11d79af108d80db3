"""Every platform table, gathered: the metadata alembic compares migrations against."""

# Imported for their row classes, which register each table on Base.metadata.
from reelforge.platform.stores import (  # noqa: F401
    adapter_digests,
    audit_log,
    files,
    fine_tune_jobs,
    idempotency_keys,
    rate_windows,
    tenants,
    usage,
    video_jobs,
    watermarks,
)
from reelforge.platform.stores.database import Base

metadata = Base.metadata
