"""Adapter digests recorded by the platform at registration, checked by serving.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapter_digests",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_index(op.f("ix_adapter_digests_tenant"), "adapter_digests", ["tenant"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_adapter_digests_tenant"), table_name="adapter_digests")
    op.drop_table("adapter_digests")
