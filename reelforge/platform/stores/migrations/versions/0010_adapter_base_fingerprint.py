"""Each registered adapter version's base fingerprint, checked against the served base at the door.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("adapter_digests") as batch:
        batch.add_column(sa.Column("base_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("adapter_digests") as batch:
        batch.drop_column("base_fingerprint")
