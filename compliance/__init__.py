"""The compliance screen and the contact scripts (SPEC §3).

``screen(text)`` reads a script or a transcript against the prohibited-content
lexicon (``compliance/lexicon/``: threats, contacting third parties, insults,
false legal claims, disclosure of the debt; Simplified Chinese, Traditional
Chinese and English) and returns a :class:`Verdict`. ``script_for(step,
region=…, **fields)`` fills the template of a ladder step in the debtor's
language (``compliance/scripts/``); every template is screened when loaded.

Pure: the packaged data is read once, on first use; nothing else is read or
written. Imports nothing of the project (docs/architecture.md).
"""

from __future__ import annotations

from functools import cache

from compliance.lexicon import CATEGORIES, Lexicon, LexiconError, Match, Verdict
from compliance.scripts import FIELDS, Scripts, ScriptError, language_for_region, spoken_ref

__all__ = [
    "CATEGORIES", "FIELDS", "Lexicon", "LexiconError", "Match", "ScriptError", "Scripts", "Verdict",
    "language_for_region", "lexicon", "screen", "screen_text", "script_for", "scripts", "spoken_ref",
]


@cache
def lexicon() -> Lexicon:
    """The packaged lexicon, compiled once."""
    return Lexicon.load()


@cache
def scripts() -> Scripts:
    """The packaged templates, each screened, loaded once."""
    return Scripts.load(lexicon())


def screen(text: str) -> Verdict:
    """The compliance screen's verdict on a script or transcript."""
    return lexicon().screen(text)


def screen_text(text: str) -> list[str]:
    """The categories of prohibited content in ``text`` (empty: allowed)."""
    return screen(text).categories


def script_for(step: str, *, region: str | None, **fields: str) -> str:
    """The filled script of a ladder step (fields: ref, amount, currency, contract) in the region's language."""
    return scripts().fill(step, region=region, **fields)
