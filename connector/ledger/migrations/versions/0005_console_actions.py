"""The console: attempt history, console users' actions, requests to the worker, search indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector.sql import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("user_names", sa.String(500), nullable=True))
    op.create_index("ix_calls_from_number", "calls", ["from_number"])
    op.create_index("ix_calls_to_number", "calls", ["to_number"])
    op.create_index("ix_calls_received_at", "calls", ["received_at"])
    op.create_table(
        "delivery_attempts",
        _id(),
        sa.Column(
            "delivery_id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])
    op.create_table(
        "console_actions",
        _id(),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=True),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_console_actions_call_id", "console_actions", ["call_id"])
    op.create_index("ix_console_actions_action_at", "console_actions", ["action", "at"])
    op.create_table(
        "console_requests",
        _id(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_console_requests_status", "console_requests", ["status"])
    op.create_index("ix_console_requests_kind_target", "console_requests", ["kind", "target"])


def downgrade() -> None:
    op.drop_table("console_requests")
    op.drop_table("console_actions")
    op.drop_table("delivery_attempts")
    op.drop_index("ix_calls_received_at", "calls")
    op.drop_index("ix_calls_to_number", "calls")
    op.drop_index("ix_calls_from_number", "calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("user_names")
