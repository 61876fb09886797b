"""Contact scripts: one template per language and ladder step
(``scripts/<language>/<step>.txt``), screened when they are loaded.

A template is plain text with ``{ref}`` (the last four characters of the
account, as spoken), ``{amount}``, ``{currency}`` and ``{contract}``. The
language follows the debtor's region: Simplified Chinese for the mainland
(``CN``, ``CN-*``), Traditional Chinese for Hong Kong, Macao and Taiwan,
English elsewhere. A template that fails the compliance screen, names an
unknown field, or is missing for a step another language has, is an error
at load naming the file, so a bad script never reaches a debtor.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from compliance.lexicon import Lexicon

FIELDS = ("ref", "amount", "currency", "contract")
DEFAULT_LANGUAGE = "en"
_TRADITIONAL = {"HK", "MO", "TW"}


class ScriptError(ValueError):
    """A template that cannot be used, or a script that cannot be filled; the message says which."""


def language_for_region(region: str | None) -> str:
    """zh-Hans for the mainland (CN, CN-*), zh-Hant for HK, MO and TW (also CN-HK, …), else English."""
    country, _, subdivision = (region or "").strip().upper().partition("-")
    if country in _TRADITIONAL or (country == "CN" and subdivision in _TRADITIONAL):
        return "zh-Hant"
    return "zh-Hans" if country == "CN" else DEFAULT_LANGUAGE


def spoken_ref(account_id: str) -> str:
    """How a script names the account: only its last four characters."""
    return "..." + account_id[-4:]


def _fields_of(template: str, source: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ScriptError(f"{source}: not a template: {e}") from None
    names = {name for _, name, _, _ in parsed if name is not None}
    specs = [f"{{{name}:{spec}}}" for _, name, spec, _ in parsed if spec]
    unknown = sorted(names - set(FIELDS))
    if unknown or specs:
        raise ScriptError(f"{source}: unknown fields {unknown or specs}; a template may use {', '.join(FIELDS)}")
    return names


def _template(path: Traversable, source: str, lexicon: Lexicon) -> str:
    try:
        template = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as e:
        raise ScriptError(f"{source}: not UTF-8 text: {e}") from None
    if not template:
        raise ScriptError(f"{source}: empty")
    _fields_of(template, source)
    verdict = lexicon.screen(template)
    if verdict.blocked:
        found = "; ".join(f"{m.category}: {m.text!r}" for m in verdict.matches)
        raise ScriptError(f"{source} fails the compliance screen ({', '.join(verdict.categories)}): {found}")
    return template


@dataclass(frozen=True)
class Scripts:
    templates: Mapping[tuple[str, str], str]  # (language, step) -> template

    @classmethod
    def load(cls, lexicon: Lexicon, root: Traversable | None = None) -> Scripts:
        """Read and screen every template (the packaged ones by default)."""
        root = root or resources.files("compliance").joinpath("scripts")
        templates = {
            (folder.name, path.name.removesuffix(".txt")): _template(path, f"{folder.name}/{path.name}", lexicon)
            for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(("_", "."))
            for path in folder.iterdir() if path.name.endswith(".txt")
        }
        scripts = cls(templates)
        if DEFAULT_LANGUAGE not in scripts.languages():
            raise ScriptError(f"{root}: no {DEFAULT_LANGUAGE}/ templates (the language for any other region)")
        for language in scripts.languages():
            missing = scripts.steps() - {step for lang, step in templates if lang == language}
            if missing:
                raise ScriptError(f"{language}/: no template for {', '.join(sorted(missing))}")
        return scripts

    def languages(self) -> set[str]:
        return {language for language, _ in self.templates}

    def steps(self) -> set[str]:
        return {step for _, step in self.templates}

    def fill(self, step: str, *, region: str | None, **fields: str) -> str:
        """The script for ``step`` in the language of ``region``, with every field filled in."""
        if set(fields) != set(FIELDS):
            raise ScriptError(f"a script takes the fields {', '.join(FIELDS)}; got {', '.join(sorted(fields))}")
        language = language_for_region(region)
        template = self.templates.get((language, step))
        if template is None:
            raise ScriptError(f"no script for step {step!r} (steps: {', '.join(sorted(self.steps()))})")
        return template.format(**fields)
