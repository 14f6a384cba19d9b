"""When a parked target was parked, for the console's overview.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector.sql import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("target_states") as batch:
        batch.add_column(sa.Column("parked_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("target_states") as batch:
        batch.drop_column("parked_since")
