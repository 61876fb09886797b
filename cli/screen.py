"""``screen TEXT | --file F | -``: the compliance screen's verdict on a script
or transcript (SPEC §3, §6): allowed or blocked, the categories of
prohibited content, and the words that matched with the lexicon rule behind
each (``--json`` for scripts). Exit 0 allowed, 1 blocked, 2 bad arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.text import Text

import compliance
from cli import render
from cli.errors import FAILED, OK, UsageError
from cli.session import launch

app = typer.Typer()
PANEL = "Compliance"


def read_input(text: str | None, file: str | None) -> str:
    """The text to screen: TEXT, the file, or standard input for '-'."""
    if text is not None and file is not None:
        raise UsageError("give the TEXT to screen or --file, not both")
    source = file if file is not None else text
    if source is None:
        raise UsageError("give the TEXT to screen, --file FILE, or - to read standard input")
    if source == "-":
        return sys.stdin.read()
    if file is None:
        return text
    try:
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text") from None
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e.strerror or e}") from None


def show(verdict: compliance.Verdict) -> None:
    if not verdict.blocked:
        render.say(Text("allowed: no prohibited content", style="green"))
        return
    render.say(Text(f"blocked: {', '.join(verdict.categories)}", style="bold red"))
    for m in verdict.matches:
        render.say(Text.assemble(f"  {m.category}: ", (repr(m.text), "bold"), f"  rule {m.rule} in {m.source}"))


@app.command("screen", rich_help_panel=PANEL)
def screen(
    ctx: typer.Context,
    text: Annotated[Optional[str], typer.Argument(
        metavar="TEXT", help="the script or transcript, or - for stdin", show_default=False)] = None,
    file: Annotated[Optional[str], typer.Option(
        "--file", "-f", metavar="FILE", help="screen this UTF-8 file (- for stdin)", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the verdict as JSON")] = False,
) -> Any:
    """Screen a script or transcript for prohibited content (threats, third-party contact, insults,
    false legal claims, disclosure of the debt).

    Prints the verdict, its categories and the words that matched. Exit 0 allowed, 1 blocked, 2 bad arguments.
    """
    async def work() -> int:
        verdict = compliance.screen(read_input(text, file))
        if as_json:
            render.json_out(verdict.as_dict())
        else:
            show(verdict)
        return FAILED if verdict.blocked else OK
    return launch(ctx, work())
