"""Take a screenshot of one case in the Temporal Web UI.

    python scripts/screenshot.py [ACCOUNT] [--out docs/case-in-ui.png]
    python scripts/screenshot.py --query "PausedBy = 'disaster_grace'" --out docs/paused-cases-in-ui.png

Opens ``<ui>/namespaces/<namespace>/workflows/case-<ACCOUNT>`` in headless
Chromium (Debian's ``/usr/bin/chromium``, driven by PyPI ``playwright``: the
project's optional ``ui`` extra), waits until the case's page has rendered,
and saves a PNG of the case (header details and timeline), plus by default
``…-details.png`` of its summary and current details.  ``make screenshot`` installs the extra and runs this
against the demo's dev server (``make demo``).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="screenshot.py", description="Screenshot a case in the Temporal Web UI.")
    p.add_argument("account", nargs="?", default="ACC-1001", help="account id (default ACC-1001)")
    p.add_argument("--ui", default=os.environ.get("TEMPORAL_UI", "http://localhost:8233"),
                   help="Web UI base URL (default $TEMPORAL_UI or http://localhost:8233)")
    p.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    p.add_argument("--out", default=str(ROOT / "docs" / "case-in-ui.png"), help="PNG to write")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM),
                   help=f"Chromium executable (default $CHROMIUM or {DEFAULT_CHROMIUM})")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=1100)
    p.add_argument("--details", action=argparse.BooleanOptionalAction, default=True,
                   help="also save OUT-details.png: the User Metadata tab with the case's current details")
    p.add_argument("--query", metavar="QUERY",
                   help="instead of one case, the workflow list filtered by this visibility query")
    p.add_argument("--timeout", type=float, default=45.0, help="seconds to wait for the page (default 45)")
    return p.parse_args(argv)


def fail(message: str, code: int = 1) -> int:
    print(f"screenshot: {message}", file=sys.stderr)
    return code


def ui_reachable(base: str) -> bool:
    try:
        with urllib.request.urlopen(base, timeout=5) as response:
            return response.status < 500
    except (urllib.error.URLError, OSError):
        return False


def list_screenshot(args: argparse.Namespace, base: str) -> int:
    """The workflow list filtered by a visibility query (what a supervisor sees)."""
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    url = f"{base}/namespaces/{args.namespace}/workflows?query={urllib.parse.quote(args.query)}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(url, wait_until="domcontentloaded", timeout=args.timeout * 1000)
            try:
                page.get_by_text("case-", exact=False).first.wait_for(timeout=args.timeout * 1000)
            except PlaywrightError:
                page.screenshot(path=str(out), full_page=True)
                return fail(f"no case listed for {args.query!r} within {args.timeout:.0f} s; saved the page to {out}")
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    print(f"saved {out}: cases where {args.query} ({url})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if not Path(args.chromium).exists():
        return fail(f"no Chromium at {args.chromium}. Install Debian's: `apt-get install chromium` "
                    "(or pass --chromium PATH / set CHROMIUM)", 2)
    try:
        from playwright.sync_api import Error as PlaywrightError, sync_playwright
    except ImportError:
        return fail("playwright is not installed: `make screenshot` installs the ui extra "
                    "(or .venv/bin/pip install -e '.[ui]')", 2)
    base = args.ui.rstrip("/")
    if not ui_reachable(base):
        return fail(f"no Temporal Web UI at {base}: start the dev server with `make demo`")
    if args.query:
        return list_screenshot(args, base)
    workflow_id = f"case-{args.account}"
    url = f"{base}/namespaces/{args.namespace}/workflows/{workflow_id}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    timeout_ms = args.timeout * 1000
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
            try:
                # The case's page has rendered once its id is the heading and
                # its history has loaded (the Event History tab shows a count).
                # Not "network idle": the UI keeps polling a running workflow.
                heading = page.get_by_role("heading", name=workflow_id)
                heading.or_(page.get_by_text("Error: 404")).first.wait_for(timeout=timeout_ms)
                if not heading.count():
                    return fail(f"the Web UI has no workflow {workflow_id} in namespace {args.namespace} "
                                f"(404 at {url})")
                page.get_by_text("Event History").first.wait_for(timeout=timeout_ms)
            except PlaywrightError as e:
                page.screenshot(path=str(out), full_page=True)
                return fail(f"the page for {workflow_id} did not render in {args.timeout:.0f} s "
                            f"(is there such a case?): {e.message.splitlines()[0]}; saved what it showed to {out}")
            page.wait_for_timeout(3000)  # the timeline draws after the history arrives
            page.screenshot(path=str(out), full_page=True)
            print(f"saved {out}: {workflow_id}, details and timeline ({url})")
            if args.details:
                # The case's summary and current details (stage, balance, what it waits for).
                details = out.with_name(f"{out.stem}-details{out.suffix}")
                page.get_by_text("User Metadata").first.click()
                page.get_by_text("Current Details").first.wait_for(timeout=timeout_ms)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(details), full_page=True)
                print(f"saved {details}: its summary and current details")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
