"""Migration 0005 (event effects) both ways, with rows, on each backend:
actors on events and case history, payments keyed by account and payment id."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from db.migrate import current_revision, downgrade, schema_differences, upgrade
from db.session import create_engine

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def payment(account: str, payment_id: str) -> dict:
    return dict(payment_id=payment_id, account_id=account, amount="10.00", currency="CNY",
                received_at=AT.replace(tzinfo=None), source="event", outstanding_after="90.00")


async def execute(url: str, *statements: tuple[str, list[dict] | dict | None]) -> list:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            results = []
            for sql, params in statements:
                result = await conn.execute(sa.text(sql), params or {})
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


INSERT_PAYMENT = ("INSERT INTO payments (payment_id, account_id, amount, currency, received_at, source, "
                  "outstanding_after) VALUES (:payment_id, :account_id, :amount, :currency, :received_at, :source, "
                  ":outstanding_after)")


async def test_0005_up_keys_payments_by_account_and_down_again_keeping_rows(database_url: str) -> None:
    await downgrade(database_url, "0004")
    await execute(database_url, (INSERT_PAYMENT, [payment("acc-1", "P-1"), payment("acc-2", "P-2")]))
    await upgrade(database_url)
    assert await current_revision(database_url) >= "0005" and await schema_differences(database_url) == []  # and later ones
    # the same payment id on another account is another payment; on the same account it is refused
    await execute(database_url, (INSERT_PAYMENT, payment("acc-2", "P-1")))
    with pytest.raises(IntegrityError):
        await execute(database_url, (INSERT_PAYMENT, payment("acc-1", "P-1")))
    [rows] = await execute(database_url, ("SELECT account_id, payment_id, request_key FROM payments "
                                          "ORDER BY account_id, payment_id", None))
    assert [tuple(r) for r in rows] == [("acc-1", "P-1", None), ("acc-2", "P-1", None), ("acc-2", "P-2", None)]
    await execute(database_url, ("UPDATE case_history SET actor = 'ops' WHERE 1 = 0", None),
                  ("UPDATE ingested_events SET actor = 'ops' WHERE 1 = 0", None))

    with pytest.raises(RuntimeError, match="P-1 \\(2 accounts\\)"):  # the old key cannot hold both
        await downgrade(database_url, "0004")
    await execute(database_url, ("DELETE FROM payments WHERE account_id = 'acc-2' AND payment_id = 'P-1'", None))
    await downgrade(database_url, "0004")
    assert await current_revision(database_url) == "0004"
    [rows] = await execute(database_url, ("SELECT account_id, payment_id FROM payments ORDER BY payment_id", None))
    assert [tuple(r) for r in rows] == [("acc-1", "P-1"), ("acc-2", "P-2")]
    with pytest.raises(IntegrityError):  # keyed by payment id alone again
        await execute(database_url, (INSERT_PAYMENT, payment("acc-3", "P-1")))
    await upgrade(database_url)
    assert await schema_differences(database_url) == []
