"""``desk [--host H] [--port P]``: serve the web desk (SPEC §8) with Uvicorn
until interrupted. Sessions are signed with ``COLLECTIONS_DESK_SECRET`` (a
random key for this run when unset, with a warning); the database must be
migrated; Temporal is connected when a page first needs it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Annotated, Any

import typer

from cli import render
from cli.errors import FAILED, OK, UsageError
from cli.session import launch, session_of

app = typer.Typer()
PANEL = "People and the work desk"


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port: 1-65535")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except socket.gaierror:
        raise UsageError(f"--host {host!r} is not an address of this machine") from None
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


@app.command("desk", rich_help_panel=PANEL)
def desk(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="H", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="P", help="port to listen on")] = 8080,
) -> Any:
    """Serve the web desk: sign in, my queue, tasks with the case and the script, the supervisor page.

    Operators sign in with the password given to `collections operators add … --password-stdin`.
    Set COLLECTIONS_DESK_SECRET (32+ characters) so sessions survive a restart; behind HTTPS set
    COLLECTIONS_DESK_HTTPS=true. Stops on Ctrl-C.
    """
    async def work() -> int:
        import uvicorn

        from desk.web.app import create_app

        session = session_of(ctx)
        settings = session.settings
        _check_port(host, port)
        async with session.database():  # one line and exit 1 if it cannot be opened
            pass
        if settings.desk_secret is None:
            render.note("COLLECTIONS_DESK_SECRET is not set: a random key signs this run's sessions "
                        "(everyone signs in again after a restart)")
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning",
                                               access_log=False, proxy_headers=False, server_header=False))
        render.say(f"web desk on http://{host}:{port}/ (Ctrl-C stops it)")
        try:
            await server.serve()
        except asyncio.CancelledError:
            pass
        if not server.started:
            render.error(f"the web desk could not start on {host}:{port}")
            return FAILED
        return OK
    return launch(ctx, work())
