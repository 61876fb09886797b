"""What an ingest reports: the counts of a file (:class:`IngestReport`), what
became of one event (:class:`EventOutcome`), and the rejects file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from intake.events import storable
from workflows.status import EventEffect


@dataclass
class IngestReport:
    accepted: int = 0  # valid and new, including those that changed nothing (no_effect)
    duplicate: int = 0
    rejected: int = 0
    no_effect: int = 0  # accepted, but the case (or the team, the region) said it changed nothing
    rejects: list[tuple[int, str]] = field(default_factory=list)
    rejects_file: str | None = None
    reject_lines: dict[int, str] = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    stopped_at: int | None = None  # an outage stopped the file: the first line left for a re-run

    @property
    def processed(self) -> int:
        return self.accepted + self.duplicate + self.rejected

    @property
    def events_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicate": self.duplicate, "rejected": self.rejected,
                "no_effect": self.no_effect, "seconds": round(self.seconds, 3),
                "events_per_second": round(self.events_per_second, 1)}

    def summary(self) -> str:
        """``accepted 51, duplicate 0, rejected 0 in 2.1 s (24 events/s)``; ``accepted 51 (2 no effect), ...``"""
        no_effect = f" ({self.no_effect} no effect)" if self.no_effect else ""
        return (f"accepted {self.accepted}{no_effect}, duplicate {self.duplicate}, rejected {self.rejected} "
                f"in {_seconds(self.seconds)} ({_rate(self.events_per_second)} events/s)")


@dataclass
class EventOutcome:
    """What became of one event (the operator CLI prints it)."""

    outcome: str  # accepted | no_effect (accepted, changed nothing) | duplicate | rejected
    event_id: str | None
    type: str | None
    status: str | None = None  # dispatched | applied | no_effect | recorded | pending (ingested_events.status)
    detail: str | None = None  # what it did (or, no_effect, why not)
    reason: str | None = None  # why it was rejected, or changed nothing
    effect: EventEffect | None = None  # the case's own answer (through the apply_event Update)

    def as_dict(self) -> dict:
        """JSON-ready: instants as ISO 8601 strings."""
        return {k: _jsonable(v) for k, v in self.__dict__.items() if v is not None}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s:.0f} s"


def _rate(r: float) -> str:
    return f"{r:.1f}" if r < 10 else f"{r:.0f}"


def write_rejects(report: IngestReport, path: Path, source: str) -> None:
    """Append each rejected line, with its number and reason, to the rejects file."""
    with path.open("a", encoding="utf-8") as out:
        for line_no, reason in report.rejects:
            out.write(json.dumps({"source": source, "line": line_no, "reason": reason,
                                  "raw": storable(report.reject_lines[line_no])}, ensure_ascii=False) + "\n")
    report.rejects_file = str(path)
