"""Keys, the history of what desks did, and the corrections they made.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("desk", sa.String(64)),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_table(
        "inquiry_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("inquiry_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("desk", sa.String(64)),
        sa.Column("data", sa.JSON()),
    )
    op.create_index("ix_inquiry_events_inquiry_id", "inquiry_events", ["inquiry_id"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("inquiry_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("language", sa.String(8)),
        sa.Column("english_text", sa.Text()),
        sa.Column("model_intent", sa.String(100)),
        sa.Column("model_desk", sa.String(64)),
        sa.Column("model_confidence", sa.Float()),
        sa.Column("model_name", sa.String(100)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("from_desk", sa.String(64), nullable=False),
        sa.Column("corrected_desk", sa.String(64), nullable=False),
        sa.Column("corrected_intent", sa.String(100)),
        sa.Column("new_intent", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(255), nullable=False),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_corrections_inquiry_id", "corrections", ["inquiry_id"])
    op.create_index("ix_corrections_created_at", "corrections", ["created_at"])


def downgrade() -> None:
    op.drop_table("corrections")
    op.drop_table("inquiry_events")
    op.drop_table("api_keys")
