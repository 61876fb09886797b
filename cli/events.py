"""One subcommand per event type (SPEC §5), so nobody writes JSON by hand.

A command builds the event, checks it against the event contract
(``intake.events``: the one place events are validated; a violation is a bad
argument, exit 2) and sends it through the ingest path like a line of a file:
de-duplicated on its ``event_id``, refused with a reason (exit 1) when it does
not apply. ``--dry-run`` prints the event line instead.
"""

from __future__ import annotations

import getpass
import inspect
import json
import re
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import typer

from cli import outcome as outcome_view
from cli import render
from cli.errors import FAILED, OK, UsageError
from cli.session import Session, launch, session_of
from desk import operators
from intake import regions
from intake.events import EVENT_TYPES, EventRejected, parse_event
from intake.ingest import Ingestor
from workflows import rules

PANEL = "Events (one command per event type)"
app = typer.Typer()  # its commands join the top level
dispute = typer.Typer(help="Open or resolve a dispute (an open dispute pauses the case).", no_args_is_help=True)
suspension = typer.Typer(help="Grant or revoke a debt suspension.", no_args_is_help=True)
plan = typer.Typer(help="Accept an installment plan.", no_args_is_help=True)
app.add_typer(dispute, name="dispute", rich_help_panel=PANEL)
app.add_typer(suspension, name="suspension", rich_help_panel=PANEL)
app.add_typer(plan, name="plan", rich_help_panel=PANEL)

Account = Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account id", show_default=False)]


def _option(name: str, annotation: Any, default: Any, help_text: str, *decls: str, **kw: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, typer.Option(*decls, help=help_text, **kw)])


# Every event command takes these; the Update-backed ones (suspend, plan accept) also take UPDATE.
COMMON = [
    _option("event_id", Optional[str], None, "event id (default: a new op-<uuid>); give one to make a retried "
            "command a no-op", show_default=False),
    _option("occurred_at", Optional[str], None, "when it happened, ISO 8601 with offset (default: now)",
            metavar="ISO", show_default=False),
    _option("operator", Optional[str], None, "who does it, kept with the event and in the case history (default: "
            "COLLECTIONS_OPERATOR, else your login name)", "--operator", "--actor", metavar="NAME",
            show_default=False),
    _option("as_json", bool, False, "print the outcome and the event as one JSON object", "--json"),
    _option("dry_run", bool, False, "print the event JSON line and send nothing", "--dry-run"),
]
UPDATE = [
    _option("signal", bool, False, "send it as a plain event signal instead of the case's apply_event Update (no "
            "answer from the case)", "--signal"),
    _option("wait", int, 30, "how long to wait for a worker to answer the Update", min=1, max=600,
            metavar="SECONDS"),
]

CLOSING = [
    _option("yes", bool, False, "do not ask before closing the case (needed off a terminal)", "--yes", "-y"),
]


def login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment (a container)
        return "operator"


def new_event(kind: str, *, event_id: str | None = None, occurred_at: str | None = None, actor: str | None = None,
              **fields: Any) -> dict:
    """An event envelope (SPEC §5): operator commands always say who sent it."""
    return {
        "event_id": event_id or f"op-{uuid.uuid4()}", "type": kind,
        "occurred_at": occurred_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "actor": actor or login_name(), **fields,
    }


def validated(event: dict) -> str:
    """The event's JSON line, if the event contract accepts it; else a bad argument."""
    line = json.dumps(event, ensure_ascii=False)
    try:
        parse_event(line)
    except EventRejected as e:
        raise UsageError(e.reason) from None
    return line


def closes_case(event: dict) -> bool:
    return event.get("type") == "case.recalled" or (event.get("type") == "dispute.resolved"
                                                    and event.get("upheld") is True)


def confirm_closing(event: dict) -> bool:
    """Ask before an event that closes a case. Off a terminal there is nobody
    to ask: a script must say --yes (exit 2)."""
    account = event.get("account_id")
    what = "recalls" if event["type"] == "case.recalled" else "upholds the dispute on"
    if not sys.stdin.isatty():
        raise UsageError(f"this {what} {account} and closes its case: pass --yes to confirm (no terminal to ask on)")
    return typer.confirm(f"This {what} {account} and closes its case for good. Send it?", default=False)


# What only some roles may do (SPEC §8: only a supervisor declares a disaster or recalls a case).
ROLE_GUARDED = {"disaster.declared": "declare_disaster", "case.recalled": "recall_case"}


async def role_refusal(session: Session, event: dict) -> str | None:
    """Why the event's actor may not send it, when the actor is a registered operator whose role does
    not allow it (the refusal is recorded in desk_actions); None otherwise."""
    action = ROLE_GUARDED.get(event.get("type", ""))
    if action is None:
        return None
    async with session.database() as db:
        actor = await operators.get_operator(db, event.get("actor") or "")
        why = operators.action_refusal(actor, action) if actor is not None else None
        if why:
            await operators.audit(db, actor.name, action, "refused", why, account_id=event.get("account_id"))
    return why


async def send(session: Session, event: dict, *, as_json: bool, dry_run: bool = False, via_update: bool = False,
               wait: float = 30.0, confirmed: bool = False) -> int:
    line = validated(event)
    if dry_run:
        render.json_out(event)
        return OK
    # The question first: it needs nothing but the terminal (off a terminal, --yes or a usage error).
    if closes_case(event) and not confirmed and not confirm_closing(event):
        render.error("nothing sent")
        return FAILED
    refusal = await role_refusal(session, event)
    if refusal:
        render.error(f"refused: {refusal}; nothing sent")
        return FAILED
    client = await session.client()
    async with session.database() as db:
        ingestor = Ingestor(client, db, session.settings, via_update=via_update, update_timeout=wait)
        outcome = await ingestor.ingest_event(line, source="cli")
        tz = None if as_json else await outcome_view.debtor_zone(db, event.get("account_id"))
    return outcome_view.print_outcome(outcome, event, json_out=as_json, tz=tz)


def event_command(group: typer.Typer, name: str, kind: str | None, help_text: str, example: str, *,
                  details: str = "", update: bool = False, closes: bool = False) -> Callable:
    """Register ``build`` (its parameters: the command's own arguments; it
    returns the event's fields) as a command taking COMMON (and UPDATE for a
    case event, CLOSING for one that may close the case)."""
    extra = COMMON + (UPDATE if update else []) + (CLOSING if closes else [])
    through = ("the case's apply_event Update: the case answers with what it did, or why nothing changed (exit 1)"
               if update else "the ingest path")
    description = (f"{details or help_text}\n\nSends a {kind or 'TYPE'} event through {through}; validated, "
                   "de-duplicated on its event id, refused with a reason.")

    def register(build: Callable[..., dict]) -> Callable[..., dict]:
        own = list(inspect.signature(build, eval_str=True).parameters.values())

        def command(ctx: typer.Context, **kw: Any) -> Any:
            common = {p.name: kw.pop(p.name) for p in extra}

            async def work() -> int:
                fields = build(**kw)
                session = session_of(ctx)
                event = new_event(kind or fields.pop("type"), event_id=common["event_id"],
                                  occurred_at=common["occurred_at"],
                                  actor=common["operator"] or session.settings.operator) | fields
                return await send(session, event, as_json=common["as_json"], dry_run=common["dry_run"],
                                  via_update=update and not common.get("signal"), wait=common.get("wait", 30),
                                  confirmed=common.get("yes", False))

            return launch(ctx, work())

        ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
        params = [ctx_param] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = description
        group.command(name, help=description, short_help=help_text, epilog=f"Example: collections {example}",
                      rich_help_panel=PANEL if group is app else None)(command)
        return build

    return register


# ---------------------------------------------------------------- the commands

@event_command(app, "default", "account.defaulted", "Open a case: an account has defaulted.",
               "default ACC-9 --amount 1200.50 --due-date 2026-09-30 --contract K-9 --debtor-id DEB-9 "
               "--phone '+86 138 0000 0000' --region CN-GD --age 41")
def _default(
    account: Account,
    amount: Annotated[str, typer.Option(help="amount due, a decimal like 1200.50", show_default=False)],
    due_date: Annotated[str, typer.Option(metavar="YYYY-MM-DD", help="when it fell due", show_default=False)],
    contract: Annotated[str, typer.Option(metavar="ID", help="contract reference", show_default=False)],
    debtor_id: Annotated[str, typer.Option(metavar="ID", help="pseudonymous debtor id", show_default=False)],
    phone: Annotated[str, typer.Option(help="the debtor's own phone number", show_default=False)],
    region: Annotated[str, typer.Option(help="region code, e.g. CN-GD, HK, US-NY (`collections regions` lists "
                                              "them)", show_default=False)],
    age: Annotated[int, typer.Option(help="debtor's age (60+ goes to a dialect team)", show_default=False)],
    currency: Annotated[Optional[str], typer.Option(help="ISO 4217 code (default: the region's)",
                                                    show_default=False)] = None,
    timezone_: Annotated[Optional[str], typer.Option("--timezone", help="debtor's IANA time zone (default: the "
                                                     "region's)", show_default=False)] = None,
    dialect: Annotated[Optional[str], typer.Option(help="dialect, for debtors aged 60+")] = None,
    income: Annotated[Optional[str], typer.Option(metavar="AMOUNT", help="monthly disposable income")] = None,
    address: Annotated[Optional[str], typer.Option(help="postal address (needed for a payment order)")] = None,
    grade: Annotated[Optional[str], typer.Option(help="initial grade: I, II or III")] = None,
    asset_flight_risk: Annotated[bool, typer.Option(help="flag asset-flight risk")] = False,
    team: Annotated[Optional[str], typer.Option(metavar="TEAM_ID", help="collection team")] = None,
    simulation: Annotated[Optional[str], typer.Option(
        metavar="JSON", help="simulated debtor behaviour, e.g. '{\"answers\": true, \"promises_in_days\": 5}'")] = None,
) -> dict:
    try:
        place = regions.place_debtor(region, phone, timezone=timezone_, currency=currency)
    except regions.PlacementError as e:
        raise UsageError(str(e)) from None
    debtor: dict[str, Any] = {"debtor_id": debtor_id, "phone": phone, "timezone": place.timezone,
                              "region": place.region, "age": age}
    optional = {"dialect": dialect, "monthly_disposable_income": income, "address": address,
                "simulation": _json_object(simulation, "--simulation") if simulation is not None else None}
    debtor.update({k: v for k, v in optional.items() if v is not None})
    fields: dict[str, Any] = {"account_id": account, "amount_due": amount, "currency": place.currency,
                              "due_date": due_date,
                              "contract_id": contract, "debtor": debtor}
    extras = {"grade": grade, "asset_flight_risk": asset_flight_risk or None, "team_id": team}
    return fields | {k: v for k, v in extras.items() if v is not None}


def _json_object(text: str, option: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{option} must be a JSON object: {e}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object like '{{\"answers\": true}}'")
    return value


@event_command(app, "pay", "payment.received", "Record a payment: prints the balance after it.",
               "pay ACC-1002 --amount 500.00 --payment-id P-77", update=True,
               details="Record a payment. The case answers with the balance after it; a payment id recorded before "
                       "changes nothing (exit 1). A closed case records it as a late payment.")
def _pay(account: Account, amount: Annotated[str, typer.Option(help="amount paid, a decimal like 500.00",
                                                               show_default=False)],
         payment_id: Annotated[Optional[str], typer.Option(metavar="ID", help="the payment's reference "
                                                           "(default: a new P-… id)")] = None) -> dict:
    return {"account_id": account, "payment_id": payment_id or f"P-{uuid.uuid4().hex[:12]}", "amount": amount}


@event_command(dispute, "open", "dispute.opened", "The debtor disputes the debt: the case pauses.",
               "dispute open ACC-1004 --reason 'not my loan'", update=True)
def _dispute_open(account: Account, reason: Annotated[str, typer.Option(help="what the debtor says",
                                                                        show_default=False)]) -> dict:
    return {"account_id": account, "reason": reason}


@event_command(dispute, "resolve", "dispute.resolved",
               "Resolve a dispute: upheld closes the case, rejected resumes it.", "dispute resolve ACC-1004 --rejected",
               update=True, closes=True,
               details="Resolve the case's open dispute: upheld closes the case dispute_upheld (asks first; --yes "
                       "off a terminal), rejected resumes it. A case with no open dispute changes nothing (exit 1).")
def _dispute_resolve(account: Account, upheld: Annotated[bool, typer.Option(
        "--upheld/--rejected", help="upheld: the debtor is right, close the case dispute_upheld; rejected: the debt "
                                    "stands, resume the case", show_default=False)]) -> dict:
    return {"account_id": account, "upheld": upheld}


SUSPEND = "Grant a debt suspension of 1–24 months."
SUSPEND_DETAILS = ("Grant a debt suspension (1–24 months): the case answers with the end date (debtor-local), or "
                   "refuses (e.g. a closed case) and nothing changes.")


def _suspend(account: Account, months: Annotated[int, typer.Option(help="1–24 months", show_default=False)],
             reason: Annotated[str, typer.Option(help="why (e.g. illness, unemployment)", show_default=False)]) -> dict:
    return {"account_id": account, "months": months, "reason": reason}


event_command(app, "suspend", "suspension.granted", SUSPEND, "suspend ACC-1005 --months 6 --reason illness",
              details=SUSPEND_DETAILS, update=True)(_suspend)
event_command(suspension, "grant", "suspension.granted", SUSPEND,
              "suspension grant ACC-1005 --months 6 --reason illness", details=SUSPEND_DETAILS, update=True)(_suspend)


@event_command(suspension, "revoke", "suspension.revoked", "Revoke a debt suspension: the case resumes.",
               "suspension revoke ACC-1005", update=True,
               details="Revoke the debt suspension in force: the case resumes. A case with none changes nothing "
                       "(exit 1).")
def _revoke(account: Account) -> dict:
    return {"account_id": account}


@event_command(app, "disaster", "disaster.declared", "Declare a disaster: every open case in the region pauses.",
               "disaster CN-SC --days 30")
def _disaster(region: Annotated[str, typer.Argument(metavar="REGION", help="region code", show_default=False)],
              days: Annotated[int, typer.Option(help="grace period in days")] = rules.DISASTER_GRACE_DAYS) -> dict:
    known = regions.find(region)
    return {"region": known.code if known else region, "days": days}


@event_command(app, "complaint", "complaint.filed",
               "File a complaint against a team (too many in a day suspend the team).",
               "complaint ACC-1010 --team team-b --text 'called me at work'")
def _complaint(account: Account,
               team: Annotated[str, typer.Option(metavar="TEAM_ID", help="the team complained about",
                                                 show_default=False)],
               text: Annotated[str, typer.Option(help="the complaint", show_default=False)]) -> dict:
    return {"account_id": account, "team_id": team, "text": text}


@event_command(app, "review-cleared", "team.review_cleared",
               "A compliance review cleared a suspended team: its cases resume.", "review-cleared team-b",
               details="A compliance review cleared a suspended team: its cases resume. A team that is not "
                       "suspended changes nothing (exit 1).")
def _review_cleared(team: Annotated[str, typer.Argument(metavar="TEAM", help="the team", show_default=False)]) -> dict:
    return {"team_id": team}


@event_command(plan, "accept", "plan.accepted", "The debtor accepts an installment plan.",
               "plan accept ACC-1003 --periods 6", update=True,
               details="Accept an installment plan of at most PERIODS months: the case answers with the schedule, "
                       "or refuses (a closed case, a plan already running, a case in the legal branch) and nothing "
                       "changes.")
def _plan_accept(account: Account,
                 periods: Annotated[int, typer.Option(help="1–12 monthly installments", show_default=False)]) -> dict:
    return {"account_id": account, "periods": periods}


@event_command(app, "recall", "case.recalled", "The creditor recalls the case: it closes.", "recall ACC-1009 --yes",
               update=True, closes=True,
               details="The creditor recalls the case: it closes recalled (asks first; --yes off a terminal). A "
                       "closed case changes nothing (exit 1).")
def _recall(account: Account) -> dict:
    return {"account_id": account}


# ---------------------------------------------------------------- emit: any type, field by field

_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}


def _typed(kind: str, key: str, value: str) -> Any:
    """A number or bool where the event model wants one; anything else stays a
    string (money too) and the model says what is wrong with it."""
    model = EVENT_TYPES.get(kind)
    field = model.model_fields.get(key) if model else None
    wanted = field.annotation if field else None
    if wanted is bool and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if wanted is int and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


@event_command(app, "emit", None, "Emit any event from field=value pairs.",
               "emit payment.received account_id=A1 payment_id=P1 amount=100.00", update=True, closes=True,
               details="Emit one event of any type from field=value pairs (numbers and true/false where the event "
                       "contract wants them; money stays a decimal string); a case event goes through the case's "
                       "Update like its own command's. Types: "
                       + ", ".join(sorted(EVENT_TYPES)) + ".")
def _emit(kind: Annotated[str, typer.Argument(metavar="TYPE", help="the event type", show_default=False)],
          fields: Annotated[Optional[list[str]], typer.Argument(metavar="FIELD=VALUE...", show_default=False)] = None,
          ) -> dict:
    event: dict[str, Any] = {"type": kind}
    for pair in fields or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"expected field=value, got {pair!r}")
        key = key.replace("-", "_")
        event[key] = _typed(kind, key, value)
    return event
