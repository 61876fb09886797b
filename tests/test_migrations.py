"""Migrations: the models and a migrated database agree, constraint names follow
the naming convention, and 0004 renames them both ways keeping every row.

Runs on SQLite and, with TEST_POSTGRES_URL, on PostgreSQL (``database_url``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError

from db.migrate import COMPARE_OPTIONS, alembic_config, current_revision, downgrade, schema_differences, upgrade
from db.models import NAMING_CONVENTION, Base
from db.session import create_engine

T = TypeVar("T")
AT = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=timezone.utc)
TABLES = Base.metadata.tables
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()  # the newest revision


async def run_sync(url: str, fn: Callable[[sa.Connection], T], *, commit: bool = False) -> T:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.run_sync(fn)
            if commit:
                await conn.commit()
            return result
    finally:
        await engine.dispose()


def names_in_database(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    inspector = sa.inspect(conn)
    return {
        table: {
            "pk": inspector.get_pk_constraint(table)["name"],
            "uq": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            "ck": sorted(c["name"] for c in inspector.get_check_constraints(table)),
            "ix": sorted(
                (i["name"], tuple(i["column_names"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")  # PostgreSQL: a unique constraint's own index
            ),
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def names_in_models() -> dict[str, dict[str, Any]]:
    def of(table: sa.Table, kind: type) -> list:
        return [c for c in table.constraints if isinstance(c, kind)]

    return {
        table.name: {
            "pk": table.primary_key.name,
            "uq": sorted((c.name, tuple(col.name for col in c.columns)) for c in of(table, sa.UniqueConstraint)),
            "ck": sorted(c.name for c in of(table, sa.CheckConstraint)),
            "ix": sorted((i.name, tuple(col.name for col in i.columns)) for i in table.indexes),
        }
        for table in TABLES.values()
    }


# Tables created by migrations after 0004: not there when 0003 is the head.
TABLES_AFTER_0004 = {"operators", "work_items", "desk_actions", "simulated_dials"}


def names_before_0004(dialect: str) -> dict[str, dict[str, Any]]:
    """What 0001-0003 left: PostgreSQL's own names, none on SQLite, ``ck_legal_track``."""
    pg = dialect == "postgresql"
    old = {t: names for t, names in names_in_models().items() if t not in TABLES_AFTER_0004}
    for table, names in old.items():
        names["pk"] = f"{table}_pkey" if pg else None
        names["uq"] = sorted((f"{table}_{'_'.join(cols)}_key" if pg else None, cols) for _, cols in names["uq"])
        names["ck"] = ["ck_legal_track"] if names["ck"] else []
    return old


def dialect_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


async def test_models_match_the_migrated_database(database_url: str) -> None:
    assert await current_revision(database_url) == HEAD
    assert await schema_differences(database_url) == []


async def test_constraint_names_follow_the_convention(database_url: str) -> None:
    in_database = await run_sync(database_url, names_in_database)
    assert in_database == names_in_models()
    cases, legal = in_database["cases"], in_database["legal_actions"]
    assert cases["pk"] == "pk_cases"
    assert cases["uq"] == [("uq_cases_workflow_id", ("workflow_id",))]
    assert ("ix_cases_stage", ("stage",)) in cases["ix"]
    assert legal["ck"] == ["ck_legal_actions_track"]
    assert in_database["case_history"]["uq"] == [
        ("uq_case_history_account_id_revision", ("account_id", "revision"))
    ]


async def test_the_comparison_reports_a_real_difference(database_url: str) -> None:
    """The empty diff above is not vacuous: a changed type, a missing index show."""
    changed = sa.MetaData(naming_convention=NAMING_CONVENTION)
    for table in TABLES.values():
        table.to_metadata(changed)
    changed.tables["cases"].c.currency.type = sa.String(4)
    changed.tables["cases"].c.amount_due.type = sa.Numeric(18, 4)
    sa.Index("ix_cases_contract_id", changed.tables["cases"].c.contract_id)

    def compare(conn: sa.Connection) -> list:
        return compare_metadata(MigrationContext.configure(conn, opts=COMPARE_OPTIONS), changed)

    diffs = await run_sync(database_url, compare)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    assert {d[3] for d in flat if d[0] == "modify_type"} == {"currency", "amount_due"}
    assert [d[1].name for d in flat if d[0] == "add_index"] == ["ix_cases_contract_id"]


# -- 0004 both ways, with rows ------------------------------------------------

ROWS: dict[str, list[dict[str, Any]]] = {
    "cases": [dict(
        account_id="acc-1", workflow_id="case-acc-1", debtor_id="deb-1", contract_id="ct-1", currency="CNY",
        amount_due=Decimal("1200.50"), outstanding=Decimal("700.25"), due_date=date(2026, 1, 15), grade="II",
        stage="ladder", team_id=None, region="R1", limitation_expires_on=date(2029, 1, 15), closed_reason=None,
        revision=3, opened_at=AT, updated_at=AT, closed_at=None,
    )],
    "contact_attempts": [dict(
        id=7, idempotency_key="acc-1:voice:1", account_id="acc-1", debtor_id="deb-1", step="voice", attempt_no=1,
        channel="voice", phone_hash="h" * 64, phone_masked="138****0000", team_id=None, attempted_at=AT,
        local_date=date(2026, 3, 4), local_time="13:06:07", timezone="Asia/Shanghai", outcome="answered",
        connected=True, promised_date=date(2026, 3, 10), paid_amount=Decimal("10.01"), recording_ref="rec-1",
        retain_until=AT.replace(year=2028), receipt_ref=None, script_sha256="s" * 64, transcript="hello",
        completed_at=AT,
    )],
    "legal_actions": [dict(
        account_id="acc-1", track="payment_order", reason="grade II, address known", status="applied",
        bond_ref=None, application_ref="po-1", suit_ref=None, enforcement_ref=None, chosen_at=AT, updated_at=AT,
    )],
    "evidence_log": [dict(
        seq=1, idempotency_key="acc-1:default", account_id="acc-1", kind="default_event", fingerprint="f" * 64,
        prev_sha256="0" * 64, sha256="a" * 64, recorded_at=AT,
    )],
}


def insert_rows(conn: sa.Connection) -> None:
    for name, rows in ROWS.items():
        conn.execute(TABLES[name].insert(), rows)


def read_rows(conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
    """The rows' columns of ROWS (a column added after 0004, like cases.strategy, is not there at 0003)."""
    return {
        name: [dict(r._mapping) for r in conn.execute(
            sa.select(*(TABLES[name].c[k] for k in ROWS[name][0])).order_by(*TABLES[name].primary_key))]
        for name in ROWS
    }


def constraints_still_hold(conn: sa.Connection) -> None:
    """Uniques and the CHECK are enforced after a recreate, and keys still autoincrement."""
    bad = [
        ("cases", {**ROWS["cases"][0], "account_id": "acc-2"}),  # same workflow_id
        ("contact_attempts", {**ROWS["contact_attempts"][0], "id": 8}),  # same idempotency key
        ("legal_actions", {**ROWS["legal_actions"][0], "account_id": "acc-2", "track": "both"}),
    ]
    for name, row in bad:
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(TABLES[name].insert(), row)
    row = {k: v for k, v in ROWS["contact_attempts"][0].items() if k != "id"} | {"idempotency_key": "acc-1:voice:2"}
    new_id = conn.execute(TABLES["contact_attempts"].insert(), row).inserted_primary_key[0]
    assert isinstance(new_id, int) and new_id != ROWS["contact_attempts"][0]["id"]  # SQLite: still the rowid
    conn.rollback()


async def assert_state(url: str, revision: str, names: dict, rows: dict) -> None:
    assert await current_revision(url) == revision
    assert await run_sync(url, names_in_database) == names
    assert await run_sync(url, read_rows) == rows


async def test_0004_down_and_up_keeps_rows_and_names(database_url: str) -> None:
    old, new = names_before_0004(dialect_of(database_url)), names_in_models()
    await downgrade(database_url, "0003")
    assert await run_sync(database_url, names_in_database) == old
    await run_sync(database_url, insert_rows, commit=True)
    rows = await run_sync(database_url, read_rows)
    assert rows["cases"][0]["opened_at"] == AT and rows["cases"][0]["amount_due"] == Decimal("1200.50")

    await upgrade(database_url)  # the path a database made before 0004 takes
    await assert_state(database_url, HEAD, new, rows)
    await run_sync(database_url, constraints_still_hold)
    assert await schema_differences(database_url) == []

    await downgrade(database_url, "0003")
    await assert_state(database_url, "0003", old, rows)
    await upgrade(database_url, "head")
    await assert_state(database_url, HEAD, new, rows)


async def test_down_to_base_and_up_again(database_url: str) -> None:
    await downgrade(database_url, "base")
    assert await current_revision(database_url) is None
    assert await run_sync(database_url, lambda conn: sa.inspect(conn).get_table_names()) in ([], ["alembic_version"])
    await upgrade(database_url)
    assert await current_revision(database_url) == HEAD
    assert await run_sync(database_url, names_in_database) == names_in_models()
    assert await schema_differences(database_url) == []
