"""Text as the screen reads it: folded, and stripped of what evasion inserts.

Every character is folded the same way, in text and in lexicon entries:
compatibility decomposition (NFKD: full-width ``ｃａｌｌ`` and ``１`` become
``call`` and ``1``), accents and zero-width characters dropped, case folded,
and a Traditional Chinese character replaced by its Simplified form (the
table of ``lexicon/traditional.txt``). Then one of two views is built:

- the **characters** view (Chinese): letters and digits only, so spaces,
  punctuation and symbols inserted between characters vanish
  (``聯 繫，你-孩 子`` reads ``联系你孩子``);
- the **words** view (English): words of letters and digits separated by
  one space, apostrophes dropped (``won't`` reads ``wont``), and a run of
  three or more single letters joined into one word (``s t u p i d``,
  ``i.d.i.o.t``).

A view remembers, for each of its characters, where it came from in the
original text, so a match can be shown to QC staff as the words really
spoken.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

CHARACTERS, WORDS = "characters", "words"
VIEWS = (CHARACTERS, WORDS)

_DROPPED = {"Mn", "Me", "Cf"}  # accents and other combining marks; zero-width and format characters
_APOSTROPHES = "'\u2019\u02bc\u2018`"
_RUN = 3  # this many single letters in a row are one word spelled out


@dataclass(frozen=True)
class View:
    """Normalised text and, for each of its characters, its index in the original."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's [start, end) behind view[start:end]."""
        return self.origin[start], self.origin[end - 1] + 1


def parse_table(text: str, name: str = "traditional.txt") -> dict[str, str]:
    """Traditional → Simplified: each line ``TRADITIONAL SIMPLIFIED`` (one or
    more Traditional forms, one Simplified character); ``#`` starts a comment."""
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or len(fields[1]) != 1 or fields[1] in fields[0]:
            raise ValueError(f"{name}:{number}: expected 'TRADITIONAL SIMPLIFIED', got {line.strip()!r}")
        for char in fields[0]:
            if char in table:
                raise ValueError(f"{name}:{number}: {char} is mapped twice")
            table[char] = fields[1]
    return table


def fold(text: str, table: Mapping[str, str]) -> list[tuple[str, int]]:
    """(folded character, index in ``text``) for every character that survives folding."""
    out: list[tuple[str, int]] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char):
            if unicodedata.category(part) in _DROPPED:
                continue
            for folded in part.casefold():
                out.append((table.get(folded, folded), index))
    return out


def characters_view(text: str, table: Mapping[str, str]) -> View:
    kept = [(c, i) for c, i in fold(text, table) if c.isalnum()]
    return View("".join(c for c, _ in kept), tuple(i for _, i in kept))


def _words(text: str, table: Mapping[str, str]) -> list[tuple[str, tuple[int, ...]]]:
    """The words of ``text``: (word, origin of each of its letters)."""
    words: list[tuple[str, tuple[int, ...]]] = []
    letters: list[tuple[str, int]] = []
    for char, index in fold(text, table) + [(" ", len(text))]:
        if char.isascii() and char.isalnum():
            letters.append((char, index))
        elif char not in _APOSTROPHES and letters:
            words.append(("".join(c for c, _ in letters), tuple(i for _, i in letters)))
            letters = []
    return words


def _join_spelled_out(words: list[tuple[str, tuple[int, ...]]], keep_first: bool) -> list:
    """Runs of single letters joined into one word; ``keep_first`` leaves a
    leading "a" or "i" of a run as a word of its own ("you are a s t u p i d")."""
    out, run = [], []
    for word in words + [("  ", ())]:
        if len(word[0]) == 1:
            run.append(word)
            continue
        if len(run) >= _RUN:
            if keep_first and run[0][0] in ("a", "i") and len(run) > _RUN:
                out.append(run.pop(0))
            out.append(("".join(w for w, _ in run), tuple(i for _, o in run for i in o)))
        else:
            out.extend(run)
        run = []
        out.append(word)
    return out[:-1]


def _join(words: list[tuple[str, tuple[int, ...]]]) -> View:
    text, origin = [], []
    for word, where in words:
        if text:
            text.append(" ")
            origin.append(origin[-1])
        text.append(word)
        origin.extend(where)
    return View("".join(text), tuple(origin))


def word_views(text: str, table: Mapping[str, str]) -> list[View]:
    """The words view; a second reading when a spelled-out run starts with a
    word of its own ("a", "i") that may or may not belong to it."""
    words = _words(text, table)
    views = [_join(_join_spelled_out(words, keep_first=False))]
    other = _join(_join_spelled_out(words, keep_first=True))
    return views if other.text == views[0].text else views + [other]


def views_of(text: str, table: Mapping[str, str]) -> dict[str, list[View]]:
    return {CHARACTERS: [characters_view(text, table)], WORDS: word_views(text, table)}
