"""the simulated call adapters' ledger of placed calls (issue 11)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 18:00:00

- ``simulated_dials``: one row per call the simulated voice robot or call
  centre placed, by the attempt's idempotency key, with its outcome and how
  many times it was asked to dial that key.  The contact activity asks it
  (the adapters' status look-up) before a retried attempt dials again, so a
  worker killed mid-call never makes the phone ring twice; the ledger lives
  in the database so a SIGKILL cannot lose it.

The downgrade drops the table (the simulated adapters then keep no ledger
across processes).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.models

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'simulated_dials',
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('dial_requests', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.JSON(), nullable=False),
        sa.Column('dialled_at', db.models.UtcDateTimeType(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_simulated_dials')),
    )


def downgrade() -> None:
    op.drop_table('simulated_dials')
