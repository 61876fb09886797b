"""event effects: who sent an event, and a payment once per account

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:30:00

- ``ingested_events.actor`` and ``case_history.actor``: who sent an event
  (the envelope's optional ``actor``), kept with the event and with the case
  history step it caused;
- ``payments``: keyed by account and payment id (a payment id counts once
  per account, whatever another account uses), and ``request_key``, the
  request that wrote the row (an event id, a call's attempt), so that a
  retry of that request is told from another use of the same payment id.

The downgrade refuses, with the accounts named, when one payment id is
recorded for two accounts: the old key cannot hold both.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('ingested_events', 'case_history'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('actor', sa.String(length=128), nullable=True))
    with op.batch_alter_table('payments') as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=160), nullable=True))
        batch_op.drop_constraint('pk_payments', type_='primary')
        batch_op.create_primary_key('pk_payments', ['account_id', 'payment_id'])


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        'SELECT payment_id, COUNT(*) FROM payments GROUP BY payment_id HAVING COUNT(*) > 1 ORDER BY payment_id'
    )).all()
    if shared:
        ids = ', '.join(f'{pid} ({n} accounts)' for pid, n in shared[:10])
        raise RuntimeError(f'cannot key payments by payment_id alone: recorded for several accounts: {ids}')
    with op.batch_alter_table('payments') as batch_op:
        batch_op.drop_constraint('pk_payments', type_='primary')
        batch_op.create_primary_key('pk_payments', ['payment_id'])
        batch_op.drop_column('request_key')
    for table in ('case_history', 'ingested_events'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('actor')
