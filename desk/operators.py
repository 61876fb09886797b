"""The people at the desk (SPEC §8): who they are, how they sign in, and what
each role may do.

What a role may do is one table, :data:`RULES`, read through three pure
functions that the web desk, ``desk/store.py`` and the command line share:

- :func:`work_refusal` — may this person work a task of this kind and team?
- :func:`action_refusal` — may this person declare a disaster, recall a case,
  open the supervisor page, manage operators?
- :func:`queue_scope` — which tasks does their queue show?

Each answers ``None`` (allowed) or the one line that says why not.

Passwords are argon2id hashes (argon2-cffi's :class:`PasswordHasher`, its
recommended parameters); signing in verifies in constant time whether or not
the name exists, refuses a deactivated operator, and rehashes a password
whose hash has outdated parameters.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from db.models import DeskAction, Operator
from db.session import Database

ROLES = ("agent", "legal", "compliance", "supervisor", "admin")
KINDS = ("human_call", "court_entry", "skip_trace_review", "compliance_review")
ACTIONS = ("declare_disaster", "recall_case", "supervise", "manage_operators")
"""What people do besides working tasks: the supervisor page is ``supervise``."""

MIN_PASSWORD = 8
NAME = re.compile(r"^[\w.@-]{1,128}$")
TEAM = re.compile(r"^[\w.@-]{1,64}$")


@dataclass(frozen=True)
class Rule:
    """What one role may do."""

    kinds: frozenset[str]  # the kinds of task it works
    own_teams_only: bool  # only tasks of the operator's teams
    actions: frozenset[str]  # of ACTIONS


RULES: dict[str, Rule] = {
    "agent": Rule(frozenset({"human_call"}), True, frozenset()),
    "legal": Rule(frozenset({"court_entry"}), False, frozenset()),
    "compliance": Rule(frozenset({"compliance_review", "skip_trace_review"}), False, frozenset()),
    "supervisor": Rule(frozenset(KINDS), False, frozenset({"declare_disaster", "recall_case", "supervise"})),
    "admin": Rule(frozenset(), False, frozenset({"manage_operators"})),
}

ACTION_WORDS = {"declare_disaster": "declare a disaster", "recall_case": "recall a case",
                "supervise": "open the supervisor page", "manage_operators": "manage operators"}


@dataclass(frozen=True)
class Actor:
    """An operator as the rules see them (no password hash)."""

    name: str
    role: str
    teams: tuple[str, ...] = ()
    active: bool = True

    @property
    def rule(self) -> Rule:
        return RULES[self.role]


@dataclass(frozen=True)
class Scope:
    """The tasks a queue shows: these kinds, of these teams (None: any team)."""

    kinds: frozenset[str]
    teams: frozenset[str] | None


class OperatorError(ValueError):
    """Bad input for an operator (a role, a name, a password): one line, nothing written."""


class SignInRefused(Exception):
    """Signing in failed; the message says so without telling which part was wrong."""


# ---------------------------------------------------------------- the rules (pure)

PEOPLE = {"agent": "agents", "legal": "legal staff", "compliance": "compliance staff",
          "supervisor": "supervisors", "admin": "admins"}


def _roles_that(allowed) -> str:
    roles = [PEOPLE[r] for r in ROLES if allowed(RULES[r])]
    return " or ".join(roles) if roles else "nobody"


def work_refusal(actor: Actor, kind: str, team_id: str | None) -> str | None:
    """None if ``actor`` may work a ``kind`` task of ``team_id``, else why not."""
    if not actor.active:
        return f"operator {actor.name} is deactivated"
    if kind not in KINDS:
        return f"unknown kind of task {kind!r}"
    rule = actor.rule
    if kind not in rule.kinds:
        return (f"only {_roles_that(lambda r: kind in r.kinds)} work {kind} tasks; "
                f"{actor.name}'s role is {actor.role}")
    if rule.own_teams_only and team_id not in actor.teams:
        mine = ", ".join(actor.teams) or "no team"
        return f"this task belongs to team {team_id or '(none)'}; {actor.name} works for {mine}"
    return None


def action_refusal(actor: Actor, action: str) -> str | None:
    """None if ``actor`` may do ``action`` (one of :data:`ACTIONS`), else why not."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not actor.active:
        return f"operator {actor.name} is deactivated"
    if action in actor.rule.actions:
        return None
    return (f"only {_roles_that(lambda r: action in r.actions)} may {ACTION_WORDS[action]}; "
            f"{actor.name}'s role is {actor.role}")


def queue_scope(actor: Actor) -> Scope:
    """The tasks ``actor``'s queue shows."""
    rule = actor.rule
    if not actor.active:
        return Scope(frozenset(), frozenset())
    return Scope(rule.kinds, frozenset(actor.teams) if rule.own_teams_only else None)


def _article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


# ---------------------------------------------------------------- validation (pure)

def check_role(role: str) -> str:
    if role not in ROLES:
        raise OperatorError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise OperatorError(f"operator name {name!r} is not accepted: 1-128 letters, digits, '.', '_', '@' or '-'")
    return name


def check_teams(role: str, teams: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    for t in teams:
        if not TEAM.match(t or ""):
            raise OperatorError(f"team {t!r} is not accepted: 1-64 letters, digits, '.', '_', '@' or '-'")
    if RULES[role].own_teams_only and not teams:
        raise OperatorError(f"{_article(role)} works only their teams' tasks: give at least one --team")
    return tuple(dict.fromkeys(teams))


def check_password(password: str | None) -> str | None:
    if password is None:
        return None
    if not password.strip():
        raise OperatorError("the password is empty")
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise OperatorError("the password is too long: at most 1024 characters")
    return password


# ---------------------------------------------------------------- passwords

@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106's low-memory profile


@lru_cache(maxsize=1)
def _decoy() -> str:
    """A hash to verify against when the name is unknown: the same work, so timing tells nothing."""
    return hasher().hash("not anybody's password")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return hasher().verify(stored or _decoy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


# ---------------------------------------------------------------- the operators table

def as_actor(row: Operator) -> Actor:
    return Actor(row.name, row.role, tuple(row.teams or ()), bool(row.active))


async def audit(db: Database, operator: str, action: str, result: str, detail: str | None = None, *,
                work_item_id: int | None = None, account_id: str | None = None) -> None:
    """A desk_actions row: who did what, done or refused."""
    async with db.transaction() as s:
        s.add(DeskAction(at=datetime.now(timezone.utc), operator=operator[:128], action=action,
                         work_item_id=work_item_id, account_id=account_id, result=result,
                         detail=detail[:2000] if detail else None))


async def add_operator(db: Database, name: str, role: str, teams: list[str] | tuple[str, ...] = (),
                       password: str | None = None, *, by: str | None = None) -> Actor:
    """Add an operator; :class:`OperatorError` (nothing written) for bad input or a name taken."""
    name, role = check_name(name), check_role(role)
    teams = check_teams(role, teams)
    password = check_password(password)
    hashed = await asyncio.to_thread(hash_password, password) if password is not None else None
    now = datetime.now(timezone.utc)
    try:
        async with db.transaction() as s:
            if await s.get(Operator, name) is not None:
                raise OperatorError(f"an operator named {name!r} exists already")
            s.add(Operator(name=name, role=role, teams=list(teams), password_hash=hashed, active=True,
                           created_at=now, updated_at=now))
    except IntegrityError:  # added by someone else meanwhile
        raise OperatorError(f"an operator named {name!r} exists already") from None
    await audit(db, by or name, "add_operator", "done", f"{name}: {role}" + (f", teams {', '.join(teams)}"
                                                                             if teams else ""))
    return Actor(name, role, teams, True)


async def get_operator(db: Database, name: str) -> Actor | None:
    async with db.sessions() as s:
        row = await s.get(Operator, name)
    return as_actor(row) if row is not None else None


async def list_operators(db: Database) -> list[tuple[Actor, bool]]:
    """Every operator, by name, with whether they have a password (may sign in to the web desk)."""
    async with db.sessions() as s:
        rows = (await s.scalars(select(Operator).order_by(Operator.name))).all()
    return [(as_actor(r), r.password_hash is not None) for r in rows]


async def set_active(db: Database, name: str, active: bool, *, by: str | None = None) -> Actor:
    """Deactivate (or reactivate) an operator: a deactivated one cannot sign in or work."""
    async with db.transaction() as s:
        row = await s.get(Operator, name)
        if row is None:
            raise OperatorError(f"no operator named {name!r}")
        row.active, row.updated_at = active, datetime.now(timezone.utc)
        actor = as_actor(row)
    await audit(db, by or name, "activate_operator" if active else "deactivate_operator", "done", name)
    return actor


async def authenticate(db: Database, name: str, password: str) -> Actor:
    """The operator ``name`` if ``password`` is theirs and they are active, else :class:`SignInRefused`."""
    async with db.sessions() as s:
        row = await s.get(Operator, name) if NAME.match(name or "") else None
    stored = row.password_hash if row is not None else None
    ok = await asyncio.to_thread(_verify, stored, password or "")
    if not ok:
        raise SignInRefused("unknown operator or wrong password")
    assert row is not None
    if not row.active:
        raise SignInRefused(f"operator {name} is deactivated")
    if hasher().check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        async with db.transaction() as s:
            await s.execute(update(Operator).where(Operator.name == name, Operator.password_hash == stored)
                            .values(password_hash=new_hash, updated_at=datetime.now(timezone.utc)))
    return as_actor(row)
