"""The package boundaries of docs/architecture.md, checked on the source.

Each top-level package may import only the packages its row allows, so the
folders keep telling the truth about what runs where (a workflow never pulls
in the database, an activity never drives a Temporal client, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"workflows", "activities", "db", "intake", "support", "cli", "worker", "starter", "tests", "bench",
           "compliance"}

# package -> the project packages it may import (besides itself)
ALLOWED = {
    "workflows": {"activities"},  # activities only for typed activity references, passed through the sandbox
    "activities": {"workflows", "db", "support", "compliance"},
    "db": set(),
    "compliance": set(),  # the screen and the scripts: pure, data files only
    "support": {"workflows"},  # the search attribute definitions and the rules' defaults
    "intake": {"workflows", "db", "support"},
    "cli": {"intake", "workflows", "db", "support", "compliance", "desk", "lab"},
    # the work desk: work items, operators and the web pages; the case through intake and Temporal
    "desk": {"intake", "workflows", "db", "support", "compliance"},
    # the strategy lab: populations, runs of the real worker on the test server, the audit, the score
    "lab": {"intake", "workflows", "activities", "db", "support", "compliance", "worker"},
    "worker": {"workflows", "activities", "db", "support"},
    "starter": {"cli"},
    "bench": {"bench", "workflows", "intake", "db", "support", "worker"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


def sources(package: str) -> list[Path]:
    single = ROOT / f"{package}.py"
    return [single] if single.exists() else sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_architecture_allows(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sources(package)
        for other in imported_packages(path) - ALLOWED[package] - {package}
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_no_test_module_imports_another():
    wrong = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_"):
                wrong.append(f"{path.name} imports {node.module}")
    assert not wrong, "shared helpers belong in tests/helpers.py: " + ", ".join(wrong)


def test_every_package_folder_is_checked():
    folders = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "migrations"}
    assert folders <= set(ALLOWED), f"add {folders - set(ALLOWED)} to ALLOWED and docs/architecture.md"
