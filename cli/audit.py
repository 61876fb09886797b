"""``audit [--database URL] [--strategy FILE] [--json]``: the compliance audit
of a contact log against SPEC §3 (:mod:`lab.audit`), from the database alone.

One line per rule with what it checked and its violations, then each
violation: account, attempt key, rule and why.  The rules' numbers are the
settings' contact rules, or a strategy file's (``--strategy``).  Exit 0 when
there is none, 1 when there is any, 2 for bad arguments.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from cli import render
from cli.errors import FAILED, OK, UsageError, check_database
from cli.session import launch, session_of
from db.session import Database
from lab.audit import AuditReport, audit
from support.settings import DATABASE_DRIVERS
from support.strategy import StrategyError, load_strategy

app = typer.Typer()
PANEL = "Compliance"


def _database_url(url: str | None, default: str) -> str:
    if url is None:
        return default
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        driver = None
    if driver not in DATABASE_DRIVERS:
        raise UsageError(f"--database must be a SQLAlchemy URL with an async driver (sqlite+aiosqlite:///PATH or "
                         f"postgresql+asyncpg://USER@HOST/DB), got {url!r}")
    return url


def show(report: AuditReport) -> None:
    for r in report.rules:
        style = "green" if not r.violations else "bold red"
        render.say(Text.assemble((f"{len(r.violations):>5} ", style), f"{r.rule}: {r.title} ({r.checked} checked)"))
    for v in report.violations:
        render.say(f"  {v.account_id}  {v.attempt_key}  {v.rule}: {v.why}")
    verdict = ("no violations" if report.clean
               else f"{len(report.violations)} violation{'s' if len(report.violations) != 1 else ''}")
    render.say(Text(f"{report.attempts} contact attempts audited: {verdict}",
                    style="green" if report.clean else "bold red"))


@app.command("audit", rich_help_panel=PANEL)
def audit_command(
    ctx: typer.Context,
    database: Annotated[Optional[str], typer.Option(
        metavar="URL", help="the database to audit (default: DATABASE_URL)", show_default=False)] = None,
    strategy: Annotated[Optional[str], typer.Option(
        metavar="FILE", help="audit against this strategy's contact rules (default: the settings')",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the audit as JSON")] = False,
) -> Any:
    """Audit a contact log against every contact rule of SPEC §3 (caps, quiet hours, own channels,
    dialect routing, retention).

    One line per rule, then every violation (account, attempt, rule, why). Exit 0 none, 1 any, 2 bad arguments.
    """
    async def work() -> int:
        settings = session_of(ctx).settings
        url = _database_url(database, settings.database_url)
        try:
            contact_rules = load_strategy(strategy).contact_rules() if strategy else settings.contact_rules
        except StrategyError as e:
            raise UsageError(str(e)) from None
        async with Database(url) as db:
            await check_database(db)
            report = await audit(db, contact_rules)
        if as_json:
            render.json_out(report.as_dict())
        else:
            show(report)
        return OK if report.clean else FAILED
    return launch(ctx, work())
