"""``ingest FILE|-``: JSON Lines events into cases (SPEC §5, §6 fixed).

Prints ``accepted N, duplicate N, rejected N in T s (R events/s)`` (or
``--json``), each rejected line with its number and reason on stderr, and
exits 1 if any line was rejected. A progress bar with counts, throughput and
the time left is drawn on stderr when it is a terminal (``--progress`` forces
it: plain lines every 2 s off a terminal; ``--no-progress`` turns it off).

Temporal or the database going away mid-file stops it: one line on stderr
says which, the counts so far and the line it stopped at (``--json`` adds
``stopped`` to the report on stdout), exit 1; the same file run again
finishes it.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from cli import render
from cli.errors import FAILED, OK, UsageError, where
from cli.session import Session, launch, session_of
from intake.faults import IngestStopped, gist
from intake.ingest import IngestReport, Ingestor

app = typer.Typer()
PANEL = "Ingest and inspect"


class IngestProgress:
    """rich.progress driven by the Ingestor's progress callback (one call per line)."""

    def __init__(self, total: int | None, *, plain_every: float = 2.0) -> None:
        self.console = render.stderr()
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("ingest"), BarColumn(bar_width=28), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("accepted {task.fields[accepted]}  duplicate {task.fields[duplicate]}  "
                       "rejected {task.fields[rejected]}"),
            TextColumn("{task.fields[rate]} events/s"), TimeRemainingColumn(),
            console=self.console, transient=False, refresh_per_second=10,
        )
        self.task = self.progress.add_task("ingest", total=total, accepted=0, duplicate=0, rejected=0, rate="0")
        self.plain_every = plain_every
        self.last_plain = time.monotonic()
        if self.live:
            self.progress.start()

    def __call__(self, report: IngestReport) -> None:
        rate = report.events_per_second
        self.progress.update(self.task, completed=report.processed, accepted=report.accepted,
                             duplicate=report.duplicate, rejected=report.rejected,
                             rate=f"{rate:.1f}" if rate < 10 else f"{rate:.0f}")
        if not self.live and time.monotonic() - self.last_plain >= self.plain_every:
            self._plain_line()

    def _plain_line(self) -> None:
        self.last_plain = time.monotonic()
        render.wide(self.progress.make_tasks_table(self.progress.tasks), self.console)

    def close(self, report: IngestReport) -> None:
        self(report)
        if self.live:
            self.progress.stop()
        else:
            self._plain_line()


def want_progress(flag: bool | None) -> bool:
    """--progress / --no-progress win; otherwise only when stderr is a terminal."""
    return flag if flag is not None else render.stderr().is_terminal


async def run_ingest(session: Session, lines: Iterable[str], source: str, rejects: Path | None, *,
                     as_json: bool = False, progress: IngestProgress | None = None, parallel: int = 16) -> int:
    client = await session.client()
    stopped = None
    async with session.database() as db:
        try:
            report = await Ingestor(client, db, session.settings).ingest_lines(
                lines, source=source, rejects_path=rejects, concurrency=parallel, progress=progress)
        except IngestStopped as stop:
            report, stopped = stop.report, stopped_line(stop, session, source)
    if progress is not None:
        progress.close(report)
    if as_json:
        render.json_out({**report.as_dict(), "rejects": [{"line": n, "reason": r} for n, r in report.rejects],
                         "rejects_file": report.rejects_file,
                         **({"stopped": {"line": report.stopped_at, "reason": stopped}} if stopped else {})})
    else:
        if not stopped:
            render.say(report.summary())
        for line_no, reason in report.rejects:
            render.error(f"  line {line_no}: {reason}")
        if report.rejects_file:
            render.note(f"rejected lines written to {report.rejects_file}")
    if stopped:
        render.error(stopped)
    return FAILED if report.rejected or stopped else OK


def stopped_line(stop: IngestStopped, session: Session, source: str) -> str:
    """``Temporal unreachable at HOST:PORT: … — stopped at line L after N accepted, …; re-run …``"""
    settings, report = session.settings, stop.report
    down = (f"Temporal unreachable at {settings.temporal_address}" if stop.service == "temporal"
            else f"database unreachable ({where(settings.database_url)})")
    again = "the same input" if source == "stdin" else "the same file"
    return (f"{down}: {gist(stop.cause)} — stopped at line {report.stopped_at} after {report.accepted} accepted, "
            f"{report.duplicate} duplicate, {report.rejected} rejected; re-run {again} to finish")


async def ingest_file(session: Session, file: str, rejects: str | None, *, as_json: bool, show: bool,
                      parallel: int) -> int:
    if file == "-":
        bar = IngestProgress(None) if show else None
        raw = getattr(sys.stdin, "buffer", None)  # bytes that are not UTF-8: that line is rejected
        stdin = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape") if raw else sys.stdin
        return await run_ingest(session, stdin, "stdin", Path(rejects or "rejects.jsonl"), as_json=as_json,
                                progress=bar, parallel=parallel)
    path = Path(file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    bar = None
    if show:
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            bar = IngestProgress(sum(1 for line in f if line.strip()))
    # a line with bytes that are not UTF-8 is rejected with that reason, not the whole file
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        return await run_ingest(session, f, str(path), Path(rejects) if rejects else path.with_suffix(".rejects.jsonl"),
                                as_json=as_json, progress=bar, parallel=parallel)


@app.command("ingest", rich_help_panel=PANEL, epilog="Examples: collections ingest samples/events.jsonl  ·  "
                                                      "cat events.jsonl | collections ingest - --json")
def ingest(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON Lines file, or - for stdin", show_default=False)],
    rejects: Annotated[Optional[str], typer.Option(
        metavar="FILE", help="rejects file (default FILE.rejects.jsonl, or rejects.jsonl for stdin)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as JSON")] = False,
    progress: Annotated[Optional[bool], typer.Option(
        "--progress/--no-progress", help="progress bar on stderr (default: only when stderr is a terminal)",
        show_default=False)] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, max=256, metavar="N", help="events dispatched at once (one account's events stay in order)")] = 16,
) -> object:
    """Ingest JSON Lines events (SPEC §5); exit 1 if any line was rejected.

    Prints the counts and throughput; each rejected line is reported with its line number and reason and
    written to the rejects file and table. Events are idempotent on event_id: ingesting a file twice changes
    nothing. If Temporal or the database goes away mid-file, the ingest stops with the counts so far (exit 1):
    run the same file again to finish it.
    """
    return launch(ctx, ingest_file(session_of(ctx), file, rejects, as_json=as_json, show=want_progress(progress),
                                   parallel=concurrency))
