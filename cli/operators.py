"""``operators add|list|deactivate|activate``: the people who work the desk
(SPEC §8). A password (for the web desk) is read from standard input with
``--password-stdin``, never from the command line; it is stored as an argon2
hash. Bad input is one line and nothing is written: exit 2 for a bad role,
name, team or password, 1 for a name already taken.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer

from cli import render
from cli.errors import FAILED, OK, USAGE
from cli.session import launch, session_of
from desk import operators
from desk.operators import ROLES, OperatorError

PANEL = "People and the work desk"
app = typer.Typer()  # joins the top level with its one group
group = typer.Typer(no_args_is_help=True, help="The people who work the desk: roles, teams, web desk passwords.")
app.add_typer(group, name="operators", rich_help_panel=PANEL)


def _by(ctx: typer.Context) -> str:
    """Who runs the command (the audit trail's operator): COLLECTIONS_OPERATOR, else the login name."""
    return session_of(ctx).settings.operator or getpass.getuser()


def _read_password() -> str:
    """The password from standard input: its first line, without the line end."""
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


@group.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the operator's name (sign-in name)",
                                        show_default=False)],
    role: Annotated[str, typer.Option("--role", metavar="ROLE", help=f"one of {', '.join(ROLES)}",
                                      show_default=False)],
    team: Annotated[list[str], typer.Option("--team", metavar="T", help="a team whose tasks they work "
                                                                         "(repeat for several)")] = [],  # noqa: B006
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read a web desk password from "
                                                                          "standard input (its first line)")] = False,
) -> Any:
    """Add an operator: name, role and teams; with --password-stdin they may sign in to the web desk."""
    async def work() -> int:
        try:
            operators.check_name(name)
            operators.check_role(role)
            operators.check_teams(role, team)
            password = operators.check_password(_read_password()) if password_stdin else None
        except OperatorError as e:
            render.error(f"{ctx.command_path}: error: {e}")
            return USAGE
        async with session_of(ctx).database() as db:
            try:
                actor = await operators.add_operator(db, name, role, team, password, by=_by(ctx))
            except OperatorError as e:
                render.error(f"{ctx.command_path}: {e}")
                return FAILED
        teams = f", teams {', '.join(actor.teams)}" if actor.teams else ""
        render.say(f"operator {actor.name} added: {actor.role}{teams}"
                   + ("; may sign in to the web desk" if password is not None else "; no web desk password"))
        return OK
    return launch(ctx, work())


@group.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False) -> Any:
    """Every operator: role, teams, whether active and whether they may sign in to the web desk."""
    async def work() -> int:
        async with session_of(ctx).database() as db:
            rows = await operators.list_operators(db)
        if as_json:
            render.json_out([{"name": a.name, "role": a.role, "teams": list(a.teams), "active": a.active,
                              "web_sign_in": has_password} for a, has_password in rows])
            return OK
        if not rows:
            render.note("no operators yet: collections operators add NAME --role ROLE [--team T]")
            return OK
        render.wide(render.table(
            ["operator", "role", "teams", "active", "web sign-in"],
            [(a.name, a.role, ", ".join(a.teams), "yes" if a.active else "no", "yes" if p else "no")
             for a, p in rows]))
        return OK
    return launch(ctx, work())


def _set_active(ctx: typer.Context, name: str, active: bool) -> Any:
    async def work() -> int:
        async with session_of(ctx).database() as db:
            before = await operators.get_operator(db, name)
            if before is None:
                render.error(f"{ctx.command_path}: no operator named {name!r}")
                return FAILED
            if before.active == active:
                render.error(f"operator {name} is already {'active' if active else 'deactivated'}: nothing changed")
                return FAILED
            await operators.set_active(db, name, active, by=_by(ctx))
        render.say(f"operator {name} {'activated' if active else 'deactivated'}")
        return OK
    return launch(ctx, work())


Name = Annotated[str, typer.Argument(metavar="NAME", help="the operator's name", show_default=False)]


@group.command("deactivate")
def deactivate(ctx: typer.Context, name: Name) -> Any:
    """Deactivate an operator: they can no longer sign in or work tasks (their history stays)."""
    return _set_active(ctx, name, False)


@group.command("activate")
def activate(ctx: typer.Context, name: Name) -> Any:
    """Activate a deactivated operator again."""
    return _set_active(ctx, name, True)
