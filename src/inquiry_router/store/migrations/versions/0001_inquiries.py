"""The inquiries table, as the product created it before it had migrations.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inquiries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("email", sa.String(320)),
        sa.Column("locale", sa.String(35)),
        sa.Column("channel", sa.String(64)),
        sa.Column("external_id", sa.String(255)),
        sa.Column("idempotency_key", sa.String(255), unique=True),
        sa.Column("request_fingerprint", sa.String(64)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("lease_expires_at", sa.DateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("desk", sa.String(64)),
        sa.Column("decision", sa.JSON()),
        sa.Column("routed_at", sa.DateTime()),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("claimed_at", sa.DateTime()),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("resolution", sa.Text()),
    )
    op.create_index("ix_inquiries_status_created", "inquiries", ["status", "created_at"])
    op.create_index(
        "ix_inquiries_desk_status_created", "inquiries", ["desk", "status", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("inquiries")
