"""The prohibited-content lexicon: data files a compliance officer reviews,
compiled once into patterns over the normalised views of a text.

Layout (``lexicon/README.md`` is the officer's guide)::

    lexicon/traditional.txt           Traditional → Simplified characters
    lexicon/<language>/language.toml  view ("words" | "characters"), negations
    lexicon/<language>/<category>.toml

A category file holds ``phrases`` (matched anywhere in the characters view,
as whole words in the words view; ``*`` ends a word with any ending there)
and ``[[near]]`` rules: a term of ``first``, then at most ``within``
characters (characters view) or words (words view), then a term of
``then``; ``order = "any"`` also takes them the other way round, and a term
of ``gap_exclude`` in the gap cancels the match. In a category marked
``negatable``, a negation of the language right before a match (in the same
sentence) cancels it.
Every entry is folded as the text is (``normalise``), so a Traditional entry
also matches Simplified text and the other way round.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable

from compliance.normalise import CHARACTERS, VIEWS, WORDS, View, characters_view, parse_table, word_views

# The categories of prohibited content, in the order a verdict lists them.
CATEGORIES = {
    "threat": "threats of violence or harm",
    "third_party_contact": "contacting family, children, school, employer, neighbours or contact lists",
    "insult": "insults and humiliation",
    "false_legal_claim": "false legal claims (arrest, prison, a criminal record for a civil debt)",
    "debt_disclosure": "disclosure of the debt to others",
}
_ALNUM = "[a-z0-9]"
_SENTENCE_ENDS = set(".!?;:\n。！？；：…")


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Match:
    """One piece of prohibited content: what rule, and what in the text."""

    category: str
    language: str
    rule: str  # the lexicon's own words: "老赖", or a near rule's two terms "联系 … 学校"
    source: str  # the lexicon file: "zh-Hans/third_party_contact.toml"
    text: str  # the words of the screened text that matched
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"category": self.category, "language": self.language, "rule": self.rule, "source": self.source,
                "text": self.text, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    categories: list[str]
    matches: list[Match] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"verdict": "blocked" if self.blocked else "allowed", "blocked": self.blocked,
                "categories": list(self.categories), "matches": [m.as_dict() for m in self.matches]}


@dataclass(frozen=True)
class Terms:
    """Lexicon entries as written, and one pattern that finds any of them."""

    written: tuple[str, ...]
    patterns: tuple[str, ...]

    def alternation(self) -> str:
        return "|".join(sorted(self.patterns, key=len, reverse=True))

    def which(self, found: str) -> str:
        for written, pattern in zip(self.written, self.patterns):
            if re.fullmatch(pattern, found):
                return written
        return found


@dataclass(frozen=True)
class Rule:
    category: str
    language: str
    source: str
    view: str
    patterns: tuple[re.Pattern[str], ...]  # a near rule of order "any" has two
    parts: tuple[Terms, ...]  # the terms of the groups: (a,) for phrases, (a, b) for a near rule
    negation: re.Pattern[str] | None

    def find(self, view: View, original: str) -> Iterator[Match]:
        for m in (m for pattern in self.patterns for m in self._search(pattern, view, original)):
            names = [terms.which(m.group(group)) for terms, group in zip(self.parts, ("a", "b"))]
            start, end = view.span(m.start(), m.end())
            yield Match(self.category, self.language, " … ".join(names), self.source, original[start:end], start, end)

    def _search(self, pattern: re.Pattern[str], view: View, original: str) -> Iterator[re.Match[str]]:
        """Every match not negated; after a negated one the search goes on from
        its next character ("we won't call, we'll call your boss")."""
        at = 0
        while (m := pattern.search(view.text, at)) is not None:
            negated = self._negated(view, original, m.start())
            at = m.start() + 1 if negated else max(m.end(), m.start() + 1)
            if not negated:
                yield m

    def _negated(self, view: View, original: str, start: int) -> bool:
        """A negation of the language right before ``start``, in the same sentence."""
        if self.negation is None:
            return False
        n = self.negation.search(view.text, max(0, start - 40), start)
        if n is None:
            return False
        between = original[view.origin[n.end() - 1] + 1:view.origin[start]]
        return not any(c in _SENTENCE_ENDS for c in between)


# ---------------------------------------------------------------- compiling entries


def term_pattern(term: str, view: str, table: Mapping[str, str]) -> str:
    """A regular expression (over ``view``) for one lexicon entry; '' if nothing is left of it."""
    if view == CHARACTERS:
        return re.escape(characters_view(term, table).text)
    words = []
    for piece in term.split():
        wildcard = piece.endswith("*")
        folded = word_views(piece.rstrip("*"), table)[0].text
        if folded:
            words.append(re.escape(folded) + (f"{_ALNUM}*" if wildcard else ""))
    return " ".join(words)


def _bounded(body: str, view: str) -> str:
    return body if view == CHARACTERS else f"(?<!{_ALNUM}){body}(?!{_ALNUM})"


def _gap(within: int, exclude: str, view: str) -> str:
    if view == CHARACTERS:
        step = f"(?:(?!{exclude}).)" if exclude else "."
        return f"{step}{{0,{within}}}?"
    step = f" (?!(?:{exclude})(?!{_ALNUM})){_ALNUM}+" if exclude else f" {_ALNUM}+"
    return f"(?:{step}){{0,{within}}}? "


@dataclass
class _Compiler:
    language: str
    source: str
    view: str
    table: Mapping[str, str]

    def terms(self, entries: object, key: str) -> Terms:
        if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
            raise LexiconError(f"{self.source}: {key} must be a non-empty list of strings")
        patterns = tuple(term_pattern(e, self.view, self.table) for e in entries)
        empty = [e for e, p in zip(entries, patterns) if not p]
        if empty:
            raise LexiconError(f"{self.source}: {key} has entries with no letters: {empty}")
        return Terms(tuple(entries), patterns)

    def phrases(self, entries: object) -> tuple[tuple[Terms], tuple[re.Pattern[str]]]:
        terms = self.terms(entries, "phrases")
        return (terms,), (re.compile(_bounded(f"(?P<a>{terms.alternation()})", self.view)),)

    def near(self, rule: dict, index: int) -> tuple[tuple[Terms, Terms], tuple[re.Pattern[str], ...]]:
        where = f"near[{index}]"
        if not isinstance(rule, dict):
            raise LexiconError(f"{self.source}: {where} must be a [[near]] table")
        unknown = set(rule) - {"first", "then", "within", "order", "gap_exclude"}
        within, order = rule.get("within", 3), rule.get("order", "forward")
        if unknown or not isinstance(within, int) or not 0 <= within <= 20 or order not in ("forward", "any"):
            raise LexiconError(f"{self.source}: {where} needs first, then, within (0-20) and order forward|any; "
                               f"unknown keys: {sorted(unknown)}")
        first = self.terms(rule.get("first"), f"{where}.first")
        then = self.terms(rule.get("then"), f"{where}.then")
        exclude = self.terms(rule["gap_exclude"], f"{where}.gap_exclude").alternation() if "gap_exclude" in rule else ""
        gap = _gap(within, exclude, self.view)
        a, b = f"(?P<a>{first.alternation()})", f"(?P<b>{then.alternation()})"
        orders = [a + gap + b] + ([b + gap + a] if order == "any" else [])
        return (first, then), tuple(re.compile(_bounded(body, self.view), re.S) for body in orders)


# ---------------------------------------------------------------- loading files


def _toml(path: Traversable, source: str) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise LexiconError(f"{source}: {e}") from None


def _negation(language: dict, source: str, view: str, table: Mapping[str, str]) -> re.Pattern[str] | None:
    entries = language.get("negations", [])
    if not entries:
        return None
    terms = _Compiler("", source, view, table).terms(entries, "negations")
    if view == CHARACTERS:
        return re.compile(f"(?:{terms.alternation()})$")
    return re.compile(f"(?:^| )(?:{terms.alternation()}) $")


def _category_rules(path: Traversable, language: str, view: str, negation, table) -> list[Rule]:
    category = path.name.removesuffix(".toml")
    source = f"{language}/{path.name}"
    if category not in CATEGORIES:
        raise LexiconError(f"{source}: unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    data = _toml(path, source)
    unknown = set(data) - {"negatable", "phrases", "near"}
    if unknown or not isinstance(data.get("negatable", False), bool):
        raise LexiconError(f"{source}: keys are negatable (true/false), phrases and [[near]]; got {sorted(unknown)}")
    compiler = _Compiler(language, source, view, table)
    negation = negation if data.get("negatable") else None
    compiled = [compiler.phrases(data["phrases"])] if "phrases" in data else []
    compiled += [compiler.near(near, index) for index, near in enumerate(data.get("near", []))]
    rules = [Rule(category, language, source, view, patterns, parts, negation) for parts, patterns in compiled]
    if not rules:
        raise LexiconError(f"{source}: no phrases and no [[near]] rules")
    return rules


def _language_rules(folder: Traversable, table: Mapping[str, str]) -> list[Rule]:
    language = folder.name
    settings_file = folder.joinpath("language.toml")
    if not settings_file.is_file():
        raise LexiconError(f"{language}/language.toml is missing (it says how the language is read)")
    settings = _toml(settings_file, f"{language}/language.toml")
    view = settings.get("view")
    if view not in VIEWS or set(settings) - {"view", "negations"}:
        raise LexiconError(f"{language}/language.toml: view must be one of {VIEWS}; keys are view and negations")
    negation = _negation(settings, f"{language}/language.toml", view, table)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml") and f.name != "language.toml"),
                   key=lambda f: f.name)
    return [rule for f in files for rule in _category_rules(f, language, view, negation, table)]


@dataclass(frozen=True)
class Lexicon:
    rules: tuple[Rule, ...]
    table: Mapping[str, str]

    @classmethod
    def load(cls, root: Traversable | None = None) -> Lexicon:
        """Read and compile a lexicon folder (the packaged one by default)."""
        root = root or resources.files("compliance").joinpath("lexicon")
        table_file = root.joinpath("traditional.txt")
        try:
            table = parse_table(table_file.read_text(encoding="utf-8")) if table_file.is_file() else {}
        except ValueError as e:
            raise LexiconError(str(e)) from None
        folders = sorted((f for f in root.iterdir() if f.is_dir() and not f.name.startswith(("_", "."))),
                         key=lambda f: f.name)
        rules = tuple(rule for folder in folders for rule in _language_rules(folder, table))
        if not rules:
            raise LexiconError(f"{root}: no language folders with category files")
        return cls(rules, table)

    def screen(self, text: str) -> Verdict:
        views = {CHARACTERS: [characters_view(text, self.table)], WORDS: word_views(text, self.table)}
        found: dict[tuple[str, int, int], Match] = {}
        for rule in self.rules:
            for view in views[rule.view]:
                for match in rule.find(view, text):
                    found.setdefault((match.category, match.start, match.end), match)
        order = list(CATEGORIES)
        matches = sorted(found.values(), key=lambda m: (order.index(m.category), m.start))
        categories = list(dict.fromkeys(m.category for m in matches))
        return Verdict(bool(matches), categories, matches)
