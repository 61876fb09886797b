"""Operator command line for the collections orchestrator: ``python starter.py COMMAND …``.

The same command line as the ``collections`` console script (``cli/``);
``python starter.py --help`` lists every command.
"""

from __future__ import annotations

from cli.main import exit_now, main, run  # noqa: F401 - main: tests and embedders await it

if __name__ == "__main__":
    exit_now(run())
