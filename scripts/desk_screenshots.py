"""Retake the web desk's screenshots in docs/: the queue, a task page and the
supervisor page.

    .venv/bin/python scripts/desk_screenshots.py [--out docs]

Runs the desk's browser test (tests/test_desk_web.py: real cases on the
time-skipping server, their day-3 human calls at the desk, Playwright driving
Debian's /usr/bin/chromium) with ``DESK_SCREENSHOTS`` set, so the pictures
show exactly what the test checks: ``desk-queue.png``, ``desk-task.png`` (a
claimed call with its script and the outcome form filled in) and
``desk-supervisor.png``. The script is in Chinese for these debtors (CN-GD):
install a CJK font for it to render (``apt-get install fonts-wqy-zenhei``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
NAMES = ("desk-queue.png", "desk-task.png", "desk-supervisor.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="desk_screenshots.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs"), help="directory for the PNGs (default docs/)")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"desk_screenshots: no Chromium at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DESK_SCREENSHOTS": str(out)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_desk_web.py", "-k", "in_a_browser"], cwd=ROOT, env=env)
    if run.returncode != 0:
        print("desk_screenshots: the browser test failed; no new screenshots", file=sys.stderr)
        return 1
    for name in NAMES:
        print(f"saved {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
