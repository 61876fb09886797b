"""A file of hostile input through the operator's ingest command: every line
ends accepted or rejected with its reason, and the file is never cut short."""

from __future__ import annotations

import json

from cli.main import main
from tests.helpers import STARTED, default_event, point_cli_at, uid
from workflows.model import case_workflow_id


async def test_a_file_with_bytes_that_are_not_utf8_is_ingested_line_by_line(running, env, db, task_queue,
                                                                            tmp_path, monkeypatch, capsys):
    point_cli_at(monkeypatch, env, db, task_queue)
    now = await env.get_current_time()
    before, after = f"ACC-{uid()}", f"ACC-{uid()}"
    STARTED.extend(env.client.get_workflow_handle(case_workflow_id(a)) for a in (before, after))
    path = tmp_path / "events.jsonl"
    with path.open("wb") as f:
        f.write(json.dumps(default_event(before, occurred_at=now)).encode() + b"\n")
        f.write(json.dumps(default_event(f"ACC-{uid()}", occurred_at=now, contract_id="K-@")).encode()
                .replace(b"@", b"\xff\xfe") + b"\n")  # Latin-1 bytes where UTF-8 is due
        f.write(json.dumps(default_event(after, occurred_at=now)).encode() + b"\n")
    assert await main(["ingest", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert [(r["line"], r["reason"]) for r in report["rejects"]] == [(2, "not valid UTF-8")]
    kept = json.loads(path.with_suffix(".rejects.jsonl").read_text(encoding="utf-8"))
    assert kept["line"] == 2 and "K-\\udcff\\udcfe" in kept["raw"]  # the bad bytes, escaped
