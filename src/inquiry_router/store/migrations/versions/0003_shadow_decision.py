"""The challenger's decision beside the champion's, in shadow mode.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inquiries", sa.Column("shadow_decision", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.drop_column("shadow_decision")
