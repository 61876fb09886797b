"""constraint names: the metadata's naming convention on every backend

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

Migrations 0001-0003 created their primary keys and unique constraints
without names, so PostgreSQL named them itself (``<table>_pkey``,
``<table>_<columns>_key``) and SQLite kept none; the one CHECK was called
``ck_legal_track``.  This renames all of them to the names
``db.models.NAMING_CONVENTION`` gives (``pk_<table>``,
``uq_<table>_<columns>``, ``ck_<table>_<name>``); indexes already had them.

Since the models carry the convention, ``env.py`` hands it to Alembic's
operations, and a database made now gets the ``pk_``/``uq_`` names straight
from 0001-0003: so each constraint is looked up as it is and renamed only if
its name differs.

PostgreSQL: ``ALTER TABLE ... RENAME CONSTRAINT``, finding each constraint's
current name in ``pg_constraint`` by table, kind and columns (a constraint's
index is renamed with it).  SQLite cannot rename a constraint: each table is
recreated (batch "move and copy", rows kept) from its reflected definition
with the names changed.  The downgrade puts the old names back the same way
(on SQLite: unnamed again).

The names are written out here, not read from the models, so that this
migration keeps doing the same thing whatever the models become.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import context, op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    'case_history', 'cases', 'complaints', 'compliance_incidents', 'contact_attempts', 'debtors',
    'disasters', 'evidence_log', 'ingested_events', 'installment_plans', 'legal_actions',
    'legal_steps', 'locks', 'payments', 'rejected_events', 'skip_traces', 'team_suspensions',
)
UNIQUE = (
    ('case_history', ('account_id', 'revision')),
    ('cases', ('workflow_id',)),
    ('compliance_incidents', ('attempt_key', 'source')),
    ('contact_attempts', ('idempotency_key',)),
    ('evidence_log', ('idempotency_key',)),
    ('evidence_log', ('sha256',)),
    ('installment_plans', ('account_id', 'accepted_at')),
    ('legal_steps', ('idempotency_key',)),
)


class Rename(NamedTuple):  # a NamedTuple: Alembic loads this file outside sys.modules
    table: str
    kind: str  # PostgreSQL's contype: p (primary key), u (unique), c (check)
    columns: tuple[str, ...]  # what identifies the constraint (a PK: none needed)
    old_postgresql: str
    old_sqlite: str | None  # None: unnamed
    new: str


def _renames() -> list[Rename]:
    renames = [Rename(t, 'p', (), f'{t}_pkey', None, f'pk_{t}') for t in TABLES]
    for table, cols in UNIQUE:
        joined = '_'.join(cols)
        renames.append(Rename(table, 'u', cols, f'{table}_{joined}_key', None, f'uq_{table}_{joined}'))
    renames.append(
        Rename('legal_actions', 'c', ('track',), 'ck_legal_track', 'ck_legal_track', 'ck_legal_actions_track')
    )
    return renames


def upgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        _rename_postgresql({r: r.new for r in _renames()})
    else:
        _rename_sqlite({r: r.new for r in _renames()})


def downgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        _rename_postgresql({r: r.old_postgresql for r in _renames()})
    else:
        _rename_sqlite({r: r.old_sqlite for r in _renames()})


# -- PostgreSQL ---------------------------------------------------------------

_CONSTRAINTS = sa.text("""
    SELECT c.conname, ARRAY(
        SELECT a.attname::text
        FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        ORDER BY k.ord) AS columns
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = current_schema() AND t.relname = :table AND c.contype::text = :kind
""")


def _current_postgresql_name(rename: Rename) -> str:
    """The constraint's name now, from the catalog (found by table, kind and columns)."""
    rows = op.get_bind().execute(_CONSTRAINTS, {'table': rename.table, 'kind': rename.kind}).all()
    names = [name for name, columns in rows if rename.kind == 'p' or tuple(columns) == rename.columns]
    if len(names) != 1:
        raise RuntimeError(f'expected one {rename.kind!r} constraint on {rename.table}{rename.columns}: {names}')
    return names[0]


def _rename_postgresql(targets: dict[Rename, str | None]) -> None:
    quote = op.get_context().dialect.identifier_preparer.quote
    for rename, target in targets.items():
        assert target is not None
        if context.is_offline_mode():  # --sql: the catalog is asked when the script runs
            _rename_postgresql_offline(rename, target, quote)
            continue
        current = _current_postgresql_name(rename)
        if current != target:
            op.execute(f'ALTER TABLE {quote(rename.table)} RENAME CONSTRAINT {quote(current)} TO {quote(target)}')


def _rename_postgresql_offline(rename: Rename, target: str, quote: Callable[[str], str]) -> None:
    current = rename.old_postgresql if target == rename.new else rename.new
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{current}'"
        f" AND conrelid = '{quote(rename.table)}'::regclass) THEN"
        f' ALTER TABLE {quote(rename.table)} RENAME CONSTRAINT {quote(current)} TO {quote(target)};'
        ' END IF; END $$'
    )


# -- SQLite -------------------------------------------------------------------

_KINDS = {'p': sa.PrimaryKeyConstraint, 'u': sa.UniqueConstraint, 'c': sa.CheckConstraint}


def _matches(constraint: sa.Constraint, rename: Rename) -> bool:
    if not isinstance(constraint, _KINDS[rename.kind]):
        return False
    if rename.kind == 'p':
        return True
    if rename.kind == 'c':  # a reflected CHECK has only its text
        return all(col in str(constraint.sqltext) for col in rename.columns)
    return tuple(c.name for c in constraint.columns) == rename.columns


def _rename_sqlite(targets: dict[Rename, str | None]) -> None:
    if context.is_offline_mode():
        raise RuntimeError('0004 recreates SQLite tables from the live schema: run it online')
    for table_name in TABLES:
        table = sa.Table(table_name, sa.MetaData(), autoload_with=op.get_bind())
        changed = False
        for rename, target in targets.items():
            if rename.table != table_name:
                continue
            found = [c for c in table.constraints if _matches(c, rename)]
            if len(found) != 1:
                raise RuntimeError(f'expected one {rename.kind!r} constraint on {table_name}{rename.columns}: {found}')
            changed |= found[0].name != target
            found[0].name = target
        if changed:
            # "move and copy": CREATE the table as reflected but with the new
            # names, INSERT ... SELECT every row, DROP the old one, RENAME, and
            # CREATE its indexes again
            with op.batch_alter_table(table_name, copy_from=table, recreate='always'):
                pass
