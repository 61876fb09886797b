"""Setting up and looking after the installation: ``migrate``,
``search-attributes``, ``settings``, ``regions``, ``verify-evidence``,
``codec-server``, ``new-payload-key``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

import typer
from phonenumbers import country_code_for_region

from cli import errors, health as health_check, render
from cli.errors import FAILED, OK, UsageError
from cli.session import launch, session_of
from db import evidence
from db.migrate import upgrade
from intake.regions import REGIONS
from support.codec import codec_from_settings, make_codec_server, new_codec_token, new_key_spec, parse_keys
from support.logs import configure_logging
from support.temporal import register_search_attributes
from workflows.search import DEFINITIONS

app = typer.Typer()
PANEL = "Set up and administer"


@app.command("migrate", rich_help_panel=PANEL)
def migrate(ctx: typer.Context) -> Any:
    """Apply the Alembic migrations to DATABASE_URL."""
    async def work() -> int:
        url = session_of(ctx).settings.database_url
        try:
            await upgrade(url)
        except (OSError, asyncio.TimeoutError) as e:  # the server is not there (a database error says itself)
            raise errors.cannot_open(url, e) from None
        render.say("database migrated")
        return OK
    return launch(ctx, work())


app.command("health", rich_help_panel=PANEL)(health_check.health)  # Temporal, database, migrations (cli/health.py)


# ---------------------------------------------------------------- search attributes

@app.command("search-attributes", rich_help_panel=PANEL)
def search_attributes(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False
                      ) -> Any:
    """Register the cases' search attributes on the Temporal namespace (idempotent).

    CaseStage, DebtorGrade, Region, PausedBy, OutstandingAmount and DebtorId, as workflows/search.py defines
    them: `cases` filters on them and the Web UI shows them. Already registered ones are left as they are.
    """
    async def work() -> int:
        session = session_of(ctx)
        client = await session.client()
        added = set(await register_search_attributes(client))
        rows = [(name, kind, "registered" if name in added else "already registered")
                for name, kind in DEFINITIONS.items()]
        if as_json:
            render.json_out([{"name": n, "type": t, "state": s} for n, t, s in rows])
            return OK
        render.wide(render.table(["search attribute", "type", "state"], rows,
                                 title=f"namespace {client.namespace} at {session.settings.temporal_address}"))
        return OK
    return launch(ctx, work())


# ---------------------------------------------------------------- settings

@app.command("settings", rich_help_panel=PANEL)
def settings(ctx: typer.Context, as_json: Annotated[bool, typer.Option(
        "--json", help="variable → value as one JSON object")] = False) -> Any:
    """Print the effective settings (environment, defaults filled in; secrets masked).

    A bad value stops every command with one line naming the variable (exit 2).
    """
    async def work() -> int:
        rows = session_of(ctx).settings.effective()
        if as_json:
            render.json_out({variable: value for variable, value, _ in rows}, indent=2)
        else:
            render.wide(render.table(["variable", "value", "meaning"], rows))
        return OK
    return launch(ctx, work())


# ---------------------------------------------------------------- regions

@app.command("regions", rich_help_panel=PANEL)
def regions_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="as JSON")] = False) -> Any:
    """The regions a debtor can be placed in, with their time zone and currency.

    `default` takes a debtor's time zone and currency from here (and checks the phone's country code against
    the region); a region not listed needs --timezone and --currency.
    """
    async def work() -> int:
        rows = [(r.code, r.name, r.timezone, r.currency, f"+{country_code_for_region(r.country)}")
                for r in sorted(REGIONS.values(), key=lambda r: r.code)]
        if as_json:
            render.json_out([dict(zip(("region", "name", "timezone", "currency", "phone"), row)) for row in rows])
        else:
            render.wide(render.table(["region", "name", "time zone", "currency", "phone"], rows))
            render.note("a subdivision of a whole-country region (e.g. GB-MAN) is placed like the country; "
                        "CN-HK, CN-MO, CN-TW are HK, MO, TW")
        return OK
    return launch(ctx, work())


# ---------------------------------------------------------------- evidence

@app.command("verify-evidence", rich_help_panel=PANEL)
def verify_evidence(ctx: typer.Context) -> Any:
    """Verify the evidence log's hash chain (exit 1 if it is broken)."""
    async def work() -> int:
        async with session_of(ctx).database() as db:
            result = await evidence.verify_chain(db)
        if result.ok:
            render.say(f"evidence chain intact: {result.entries} entries", "green")
            return OK
        render.error(f"evidence chain BROKEN at seq {result.broken_at_seq}: {result.reason}")
        return FAILED
    return launch(ctx, work())


# ---------------------------------------------------------------- payload encryption

@app.command("codec-server", rich_help_panel=PANEL,
             epilog="Example: COLLECTIONS_PAYLOAD_KEYS=k1:... collections codec-server --port 8081")
def codec_server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8081,
    allow_origin: Annotated[Optional[list[str]], typer.Option(
        metavar="URL", help="the Web UI's origin (default http://localhost:8233); repeat for several")] = None,
) -> Any:
    """Serve the payload codec to the Web UI, so it can show encrypted cases.

    Temporal's remote codec protocol; needs COLLECTIONS_PAYLOAD_KEYS. Every request needs the token
    (COLLECTIONS_CODEC_TOKEN, else a new one printed at start): start the UI with --ui-codec-endpoint
    http://HOST:PORT/TOKEN. Bind it where only authorised staff can reach it.
    """
    async def work() -> int:
        codec = codec_from_settings(session_of(ctx).settings)
        if codec is None:
            raise UsageError("COLLECTIONS_PAYLOAD_KEYS is not set: nothing to decrypt with "
                             "(collections new-payload-key makes one)")
        configure_logging(session_of(ctx).settings.log_level or "INFO")  # one line per request: who asked
        origins = allow_origin or ["http://localhost:8233", "http://127.0.0.1:8233"]
        secret = session_of(ctx).settings.codec_token
        token = secret.get_secret_value() if secret else new_codec_token()
        server = make_codec_server(codec, host, port, origins, token=token)
        render.say(f"codec server for {', '.join(origins)}; give the Web UI the codec endpoint "
                   f"http://{host}:{port}/{token}")
        try:
            await asyncio.to_thread(server.serve_forever)
        finally:
            server.server_close()
        return OK
    return launch(ctx, work())


@app.command("new-payload-key", rich_help_panel=PANEL)
def new_payload_key(ctx: typer.Context, key_id: Annotated[str, typer.Option("--id", help="key id")] = "k1") -> Any:
    """Print a new payload encryption key for COLLECTIONS_PAYLOAD_KEYS."""
    async def work() -> int:
        spec = new_key_spec(key_id.strip())
        parse_keys(spec)  # the same check the settings make: a bad id is one line, exit 2
        print(spec)
        return OK
    return launch(ctx, work())
