"""Background upload validation: the upload's rights declaration and a validation lease on each file.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("declaration", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("validation_lease_until", sa.Float(), nullable=True))
        batch.add_column(sa.Column("validation_attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("validation_attempts")
        batch.drop_column("validation_lease_until")
        batch.drop_column("declaration")
