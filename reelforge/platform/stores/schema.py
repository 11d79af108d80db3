"""Every platform table, gathered: the metadata alembic compares migrations against."""

from reelforge.platform.stores import (
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

TABLE_MODULES = (
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
metadata = Base.metadata
