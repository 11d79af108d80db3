"""A video job's first-frame image (image-to-video) and the video it remixes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("reference_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("remixed_from", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("remixed_from")
        batch.drop_column("reference_sha256")
