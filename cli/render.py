"""Output for people and for scripts.

People get Rich: tables, colour and progress, but only on a terminal and
never with ``NO_COLOR`` set (then not one ANSI escape, not even bold).
Scripts get plain JSON lines from :func:`json_out`. Consoles are made per
call, so they always write to the current ``sys.stdout``/``sys.stderr``
(pytest's capture, a pipe, a terminal).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from intake.regions import local_time


def no_color() -> bool:
    """https://no-color.org: set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


def _console(stderr: bool) -> Console:
    # soft_wrap: a long line stays one line (grep, logs); markup off: data is never parsed as [markup].
    return Console(stderr=stderr, color_system=None if no_color() else "auto", soft_wrap=True, markup=False,
                   highlight=False)


def stdout() -> Console:
    return _console(stderr=False)


def stderr() -> Console:
    return _console(stderr=True)


def say(text: str | Text, style: str | None = None) -> None:
    stdout().print(text, style=style)


def error(text: str | Text) -> None:
    stderr().print(text, style="red")


def note(text: str | Text) -> None:
    """Secondary information, on stderr (stdout stays for results)."""
    stderr().print(text, style="dim")


UNBOUNDED = 1000  # columns: wide enough for any row we print


def wide(renderable: RenderableType, console: Console | None = None) -> None:
    """Print a table; off a terminal at its natural width (a pipe gets whole rows, not 80 columns)."""
    console = console or stdout()
    if console.is_terminal:
        console.print(renderable, soft_wrap=False)
        return
    natural = Measurement.get(console, console.options.update_width(UNBOUNDED), renderable).maximum
    sized = _console(console.stderr)  # a copy: the width is this print's only
    sized.width = max(console.width, min(natural, UNBOUNDED))
    with sized.capture() as captured:
        sized.print(renderable, soft_wrap=False)
    stream = sys.stderr if console.stderr else sys.stdout
    stream.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))  # no padding at line ends
    stream.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
          justify: dict[str, str] | None = None) -> Table:
    """A plain table: bold header, a rule under it, no side borders."""
    t = Table(*headers, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left",
              header_style="bold", title_style="bold")
    for col in t.columns:
        col.justify = (justify or {}).get(str(col.header), "left")  # type: ignore[assignment]
        col.overflow = "fold"
    for row in rows:
        t.add_row(*(Text(str(v)) for v in row))
    return t


# ---------------------------------------------------------------- times

def local(at: datetime | None, tz: str | None) -> str:
    """An instant as people read it: the debtor's local time with the year and
    the zone, ``2026-11-29 10:00 Asia/Shanghai`` (UTC ISO 8601 is for JSON only)."""
    return local_time(at, tz) if at is not None else ""


def relative(at: datetime | None, now: datetime) -> str:
    """``in 5 d 0 h``, ``3 h 10 min ago``: how far an instant is from now."""
    if at is None:
        return ""
    seconds = int((at - now).total_seconds())
    ahead, seconds = seconds >= 0, abs(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    text = f"{d} d {h} h" if d else (f"{h} h {m} min" if h else f"{m} min")
    return f"in {text}" if ahead else f"{text} ago"


def parse_instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ---------------------------------------------------------------- JSON for scripts

def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # money stays a decimal string
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(value, default=_plain, ensure_ascii=False, indent=indent)


def json_out(value: Any, *, indent: int | None = None) -> None:
    """JSON on stdout, untouched by Rich (no wrapping, no colour)."""
    sys.stdout.write(to_json(value, indent=indent) + "\n")
    sys.stdout.flush()
