"""work desk: operators, work items and the desk's audit trail (SPEC §8)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:00:00

- ``operators``: people with a role and teams, an argon2 password hash for
  the web desk;
- ``work_items``: a step a case waits for a person to do (a human call, a
  court entry, a skip-trace review, a compliance review), once per key;
- ``desk_actions``: every action an operator took at the desk or the
  command line, allowed or refused.

The downgrade drops the three tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'operators',
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('teams', sa.JSON(), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', db.models.UtcDateTimeType(), nullable=False),
        sa.Column('updated_at', db.models.UtcDateTimeType(), nullable=False),
        sa.CheckConstraint("role IN ('agent', 'legal', 'compliance', 'supervisor', 'admin')",
                           name=op.f('ck_operators_role')),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_operators')),
    )
    op.create_table(
        'work_items',
        sa.Column('id', BIGINT_PK, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('account_id', sa.String(length=64), nullable=True),
        sa.Column('debtor_id', sa.String(length=64), nullable=True),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('team_id', sa.String(length=64), nullable=True),
        sa.Column('step', sa.String(length=40), nullable=True),
        sa.Column('window_start', db.models.UtcDateTimeType(), nullable=True),
        sa.Column('window_end', db.models.UtcDateTimeType(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('claimed_by', sa.String(length=128), nullable=True),
        sa.Column('claimed_at', db.models.UtcDateTimeType(), nullable=True),
        sa.Column('attempt_key', sa.String(length=160), nullable=True),
        sa.Column('completed_by', sa.String(length=128), nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('created_at', db.models.UtcDateTimeType(), nullable=False),
        sa.Column('updated_at', db.models.UtcDateTimeType(), nullable=False),
        sa.Column('completed_at', db.models.UtcDateTimeType(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'claimed', 'done', 'expired')", name=op.f('ck_work_items_status')),
        sa.CheckConstraint(
            "kind IN ('human_call', 'court_entry', 'skip_trace_review', 'compliance_review')",
            name=op.f('ck_work_items_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_work_items')),
        sa.UniqueConstraint('key', name=op.f('uq_work_items_key')),
    )
    op.create_index(op.f('ix_work_items_account_id'), 'work_items', ['account_id'])
    op.create_index('ix_work_items_status_team', 'work_items', ['status', 'team_id'])
    op.create_index('ix_work_items_kind_status', 'work_items', ['kind', 'status'])
    op.create_table(
        'desk_actions',
        sa.Column('id', BIGINT_PK, nullable=False),
        sa.Column('at', db.models.UtcDateTimeType(), nullable=False),
        sa.Column('operator', sa.String(length=128), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('work_item_id', BIGINT_PK, nullable=True),
        sa.Column('account_id', sa.String(length=64), nullable=True),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_actions')),
    )
    op.create_index(op.f('ix_desk_actions_operator'), 'desk_actions', ['operator'])
    op.create_index(op.f('ix_desk_actions_work_item_id'), 'desk_actions', ['work_item_id'])


def downgrade() -> None:
    op.drop_table('desk_actions')
    op.drop_table('work_items')
    op.drop_table('operators')
