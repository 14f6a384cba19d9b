"""The first ledger schema: calls, deliveries, target states.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector.sql import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", _pk, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(300), nullable=False, unique=True),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("payload_version", sa.String(20), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column("start_time", UTCDateTime(), nullable=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(64), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("channel_name", sa.String(255), nullable=True),
    )
    op.create_index("ix_calls_call_id", "calls", ["call_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", _pk, primary_key=True, autoincrement=True),
        sa.Column("call_pk", _pk, sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("queued_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("call_pk", "target", name="uq_delivery_call_target"),
    )
    op.create_index("ix_deliveries_call_pk", "deliveries", ["call_pk"])
    op.create_index("ix_deliveries_status", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "target_states",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("parked_until", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("target_states")
    op.drop_table("deliveries")
    op.drop_table("calls")
