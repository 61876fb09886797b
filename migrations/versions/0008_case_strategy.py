"""the strategy a case started with (SPEC §9)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:30:00

- ``cases.strategy``: ``name@version`` of the strategy the case follows
  (COLLECTIONS_STRATEGY at ingest), written by the open_case activity; the
  lab's report groups its cases by it.  NULL for cases opened before.

The downgrade drops the column (the cases keep their strategy in their
workflow input and the ``Strategy`` search attribute).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch_op:
        batch_op.add_column(sa.Column('strategy', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases') as batch_op:
        batch_op.drop_column('strategy')
