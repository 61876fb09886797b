"""Operators (SPEC §8): what each role may do (one table, pure functions),
adding operators with argon2 passwords, signing in, and the
``collections operators`` commands (bad input: one line, nothing written)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from cli.main import main
from db.models import DeskAction, Operator
from desk import operators
from desk.operators import (ACTIONS, KINDS, Actor, OperatorError, SignInRefused, action_refusal, queue_scope,
                            work_refusal)

AGENT = Actor("alice", "agent", ("team-a",))
LEGAL = Actor("lee", "legal")
COMPLIANCE = Actor("cora", "compliance")
SUPERVISOR = Actor("sam", "supervisor")
ADMIN = Actor("ada", "admin")

# (who, kind, team) -> allowed?
WORK = [
    (AGENT, "human_call", "team-a", True),
    (AGENT, "human_call", "team-b", False),
    (AGENT, "human_call", None, False),
    (AGENT, "court_entry", "team-a", False),
    (AGENT, "compliance_review", "team-a", False),
    (LEGAL, "court_entry", None, True),
    (LEGAL, "human_call", "team-a", False),
    (COMPLIANCE, "compliance_review", "team-b", True),
    (COMPLIANCE, "skip_trace_review", None, True),
    (COMPLIANCE, "court_entry", None, False),
    *[(SUPERVISOR, kind, "team-z", True) for kind in KINDS],
    *[(ADMIN, kind, None, False) for kind in KINDS],
]


@pytest.mark.parametrize("actor,kind,team,allowed", WORK,
                         ids=[f"{a.role}-{k}-{t}" for a, k, t, _ in WORK])
def test_who_works_which_tasks(actor, kind, team, allowed):
    refusal = work_refusal(actor, kind, team)
    assert (refusal is None) == allowed, refusal
    if not allowed:
        assert actor.name in refusal  # it says who and why, on one line
        assert "\n" not in refusal


def test_an_agent_refused_another_teams_task_is_told_whose_it_is():
    assert work_refusal(AGENT, "human_call", "team-b") == "this task belongs to team team-b; alice works for team-a"
    assert work_refusal(LEGAL, "human_call", "team-a") == ("only agents or supervisors work human_call tasks; "
                                                           "lee's role is legal")


@pytest.mark.parametrize("action", ACTIONS)
def test_only_supervisors_declare_recall_and_supervise_only_admins_manage_operators(action):
    allowed = {role for role, rule in operators.RULES.items() if action in rule.actions}
    for actor in (AGENT, LEGAL, COMPLIANCE, SUPERVISOR, ADMIN):
        assert (action_refusal(actor, action) is None) == (actor.role in allowed)
    assert allowed == ({"admin"} if action == "manage_operators" else {"supervisor"})
    assert action_refusal(AGENT, "recall_case") == "only supervisors may recall a case; alice's role is agent"


def test_a_deactivated_operator_may_do_nothing():
    gone = Actor("sam", "supervisor", (), active=False)
    assert work_refusal(gone, "human_call", "team-a") == "operator sam is deactivated"
    assert action_refusal(gone, "declare_disaster") == "operator sam is deactivated"
    assert queue_scope(gone).kinds == frozenset()


def test_the_queue_shows_an_agent_their_teams_and_others_every_team():
    assert queue_scope(AGENT) == operators.Scope(frozenset({"human_call"}), frozenset({"team-a"}))
    assert queue_scope(SUPERVISOR) == operators.Scope(frozenset(KINDS), None)
    assert queue_scope(LEGAL).teams is None and queue_scope(ADMIN).kinds == frozenset()


@pytest.mark.parametrize("name,role,teams,password,message", [
    ("bob", "boss", [], None, "unknown role 'boss': one of agent, legal, compliance, supervisor, admin"),
    ("bob smith", "legal", [], None, "operator name 'bob smith' is not accepted"),
    ("bob", "agent", [], None, "an agent works only their teams' tasks: give at least one --team"),
    ("bob", "agent", ["team a"], None, "team 'team a' is not accepted"),
    ("bob", "legal", [], "", "the password is empty"),
    ("bob", "legal", [], "   ", "the password is empty"),
    ("bob", "legal", [], "short", "the password is too short: at least 8 characters"),
])
async def test_bad_input_adds_nobody(db, name, role, teams, password, message):
    with pytest.raises(OperatorError, match="^" + message.replace("(", r"\(")):
        await operators.add_operator(db, name, role, teams, password)
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Operator)) == 0


async def test_an_operator_signs_in_with_their_password_only(db):
    await operators.add_operator(db, "alice", "agent", ["team-a", "team-a", "team-b"], "correct horse", by="ada")
    async with db.sessions() as s:
        row = await s.get(Operator, "alice")
        audit = (await s.scalars(select(DeskAction))).all()
    assert row.password_hash.startswith("$argon2id$") and "correct horse" not in row.password_hash
    assert row.teams == ["team-a", "team-b"]
    assert [(a.operator, a.action, a.result) for a in audit] == [("ada", "add_operator", "done")]
    assert await operators.authenticate(db, "alice", "correct horse") == Actor("alice", "agent",
                                                                                ("team-a", "team-b"))
    for name, password in (("alice", "wrong horse"), ("nobody", "correct horse"), ("alice", ""),
                           ("a' OR 1=1 --", "x")):
        with pytest.raises(SignInRefused, match="^unknown operator or wrong password$"):
            await operators.authenticate(db, name, password)
    with pytest.raises(OperatorError, match="an operator named 'alice' exists already"):
        await operators.add_operator(db, "alice", "legal", [], "another password")


async def test_no_password_means_no_web_sign_in_and_deactivated_is_refused(db):
    await operators.add_operator(db, "lee", "legal")
    with pytest.raises(SignInRefused, match="unknown operator or wrong password"):
        await operators.authenticate(db, "lee", "")
    await operators.add_operator(db, "sam", "supervisor", [], "supervisor pass")
    await operators.set_active(db, "sam", False, by="ada")
    with pytest.raises(SignInRefused, match="^operator sam is deactivated$"):
        await operators.authenticate(db, "sam", "supervisor pass")


async def test_an_outdated_hash_is_replaced_at_sign_in(db):
    from argon2 import PasswordHasher

    await operators.add_operator(db, "sam", "supervisor", [], "supervisor pass")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("supervisor pass")
    async with db.transaction() as s:
        (await s.get(Operator, "sam")).password_hash = weak
    await operators.authenticate(db, "sam", "supervisor pass")
    async with db.sessions() as s:
        rehashed = (await s.get(Operator, "sam")).password_hash
    assert rehashed != weak and not operators.hasher().check_needs_rehash(rehashed)
    await operators.authenticate(db, "sam", "supervisor pass")


# ---------------------------------------------------------------- the command line

async def run(monkeypatch, capsys, db, argv, stdin: str | None = None) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("COLLECTIONS_OPERATOR", "ada")
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = await main(argv)
    out, err = capsys.readouterr()
    return code, out, err


async def test_operators_add_and_list(db, monkeypatch, capsys):
    code, out, err = await run(monkeypatch, capsys, db, ["operators", "add", "alice", "--role", "agent", "--team",
                                                         "team-a", "--password-stdin"], "correct horse\n")
    assert (code, err) == (0, "")
    assert out.strip() == "operator alice added: agent, teams team-a; may sign in to the web desk"
    assert await operators.authenticate(db, "alice", "correct horse")
    code, out, _ = await run(monkeypatch, capsys, db, ["operators", "add", "lee", "--role", "legal"])
    assert code == 0 and "no web desk password" in out
    code, out, _ = await run(monkeypatch, capsys, db, ["operators", "list", "--json"])
    assert code == 0
    import json
    assert json.loads(out) == [
        {"name": "alice", "role": "agent", "teams": ["team-a"], "active": True, "web_sign_in": True},
        {"name": "lee", "role": "legal", "teams": [], "active": True, "web_sign_in": False}]
    code, out, _ = await run(monkeypatch, capsys, db, ["operators", "list"])
    assert code == 0 and "alice" in out and "team-a" in out


@pytest.mark.parametrize("argv,stdin,code,message", [
    (["--role", "boss"], None, 2, "unknown role 'boss'"),
    (["--role", "agent"], None, 2, "give at least one --team"),
    (["--role", "legal", "--password-stdin"], "\n", 2, "the password is empty"),
    (["--role", "legal", "--password-stdin"], "", 2, "the password is empty"),
])
async def test_operators_add_refuses_bad_input_in_one_line(db, monkeypatch, capsys, argv, stdin, code, message):
    got, out, err = await run(monkeypatch, capsys, db, ["operators", "add", "bob", *argv], stdin)
    assert got == code and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Operator)) == 0


async def test_operators_add_a_taken_name_exits_1_and_changes_nothing(db, monkeypatch, capsys):
    await operators.add_operator(db, "bob", "legal", [], "first password")
    code, out, err = await run(monkeypatch, capsys, db, ["operators", "add", "bob", "--role", "supervisor"])
    assert code == 1 and out == "" and err.strip() == "collections operators add: an operator named 'bob' exists " \
                                                      "already"
    assert (await operators.get_operator(db, "bob")).role == "legal"


async def test_operators_deactivate_twice_says_nothing_changed(db, monkeypatch, capsys):
    await operators.add_operator(db, "bob", "legal")
    assert (await run(monkeypatch, capsys, db, ["operators", "deactivate", "bob"]))[0] == 0
    code, _, err = await run(monkeypatch, capsys, db, ["operators", "deactivate", "bob"])
    assert code == 1 and "already deactivated: nothing changed" in err
    assert (await operators.get_operator(db, "bob")).active is False
