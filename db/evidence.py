"""The append-only, hash-chained evidence log (SPEC §2.1, §6).

Each entry's ``sha256`` = SHA-256(``prev_sha256`` + ``fingerprint``), where
the fingerprint is SHA-256 of the canonical evidence (the default event and
contract reference, a served letter, ...).  One chain runs through all
accounts, so removing or editing any row breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from db.models import EvidenceEntry
from db.session import Database

GENESIS = "0" * 64
CHAIN_LOCK = "evidence-chain"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def link(prev_sha256: str, fp: str) -> str:
    return hashlib.sha256((prev_sha256 + fp).encode("ascii")).hexdigest()


_BY_KEY = select(EvidenceEntry).where(EvidenceEntry.idempotency_key == bindparam("key"))
_HEAD = select(EvidenceEntry.sha256).order_by(EvidenceEntry.seq.desc()).limit(1)


def append_in(
    db: Database, session: Session, *, account_id: str, kind: str, key: str, payload: str, at: datetime
) -> EvidenceEntry:
    """Append once per ``key``: a retried append returns the existing entry."""
    db.lock_in(session, CHAIN_LOCK)
    existing = session.scalar(_BY_KEY, {"key": key})
    if existing is not None:
        return existing
    prev = session.scalar(_HEAD) or GENESIS
    fp = fingerprint(payload)
    entry = EvidenceEntry(
        idempotency_key=key, account_id=account_id, kind=kind, fingerprint=fp,
        prev_sha256=prev, sha256=link(prev, fp), recorded_at=at,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass
class ChainReport:
    ok: bool
    entries: int
    broken_at_seq: int | None = None
    reason: str | None = None


async def verify_chain(db: Database) -> ChainReport:
    prev = GENESIS
    count = 0
    async with db.sessions() as session:
        rows = await session.stream_scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq))
        async for e in rows:
            count += 1
            if e.prev_sha256 != prev:
                return ChainReport(False, count, e.seq, "prev_sha256 does not match the previous entry")
            if e.sha256 != link(e.prev_sha256, e.fingerprint):
                return ChainReport(False, count, e.seq, "sha256 does not match prev_sha256 + fingerprint")
            prev = e.sha256
    return ChainReport(True, count)
