"""no personal data in Temporal: the debtor's simulation profile on its row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

- ``debtors.simulation``: the adapters' simulation profile (it may hold a
  skip-trace number), written by the intake with the debtor's contact
  details before it starts a case; activities read it from here, and a case's
  workflow input no longer carries it.  NULL for rows written before: those
  cases' inputs still hold their profile.

The downgrade drops the column (the cases' inputs no longer carry the
profile, so the simulated adapters then answer with their defaults).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('debtors') as batch_op:
        batch_op.add_column(sa.Column('simulation', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('debtors') as batch_op:
        batch_op.drop_column('simulation')
