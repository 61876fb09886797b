"""The product's payload converter (support/payloads.py) decodes what the
SDK's default converter decodes, the same way, from the same bytes."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from support.codec import data_converter
from support.payloads import DATA_CONVERTER
from support.settings import load_settings
from workflows.model import CaseInput, CaseSnapshot, ContactResult

HISTORIES = Path(__file__).parent / "histories"
SDK = DataConverter.default.payload_converter
OURS = DATA_CONVERTER.payload_converter


def started_inputs() -> list[Payload]:
    """The case inputs of every recorded history (v1 to the newest)."""
    payloads = []
    for path in sorted(HISTORIES.glob("*.json")):
        first = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
        payloads.append(Payload.FromString(_proto(first["input"]["payloads"][0])))
    return payloads


def _proto(raw: dict) -> bytes:
    return Payload(metadata={k: base64.b64decode(v) for k, v in raw["metadata"].items()},
                   data=base64.b64decode(raw["data"])).SerializeToString()


def test_every_recorded_case_input_decodes_as_the_sdk_decodes_it():
    inputs = started_inputs()
    assert len(inputs) >= 50
    for payload in inputs:
        ours, = OURS.from_payloads([payload], [CaseInput])
        sdk, = SDK.from_payloads([payload], [CaseInput])
        assert ours == sdk and type(ours.event.debtor) is type(sdk.event.debtor)


def test_values_round_trip_and_the_bytes_are_the_sdks():
    result = ContactResult(outcome="answered", attempted_at=datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc),
                           connected=True, paid_amount="5.00", payment_id="P-1")
    [payload] = OURS.to_payloads([result])
    assert payload == SDK.to_payloads([result])[0]
    assert OURS.from_payloads([payload], [ContactResult]) == [result]
    assert OURS.from_payloads([payload], [ContactResult])[0].attempted_at.tzinfo is not None


def test_unknown_fields_are_ignored_and_a_missing_required_field_fails_as_in_the_sdk():
    snap = CaseSnapshot(account_id="A-1", revision=1, stage="closed", grade="II", outstanding="0.00", paused_by=[],
                        next_action=None, next_action_at=None, note="n", limitation_expires_on="2030-01-01",
                        closed_reason="paid")
    wire = json.loads(SDK.to_payloads([snap])[0].data)
    newer = SDK.to_payloads([{**wire, "field_of_a_later_release": 1}])
    assert OURS.from_payloads(newer, [CaseSnapshot]) == [snap]
    missing = SDK.to_payloads([{k: v for k, v in wire.items() if k != "account_id"}])
    for converter in (OURS, SDK):
        with pytest.raises(Exception, match="account_id"):
            converter.from_payloads(missing, [CaseSnapshot])


def test_the_clients_and_workers_use_it_with_and_without_encryption(monkeypatch):
    plain = data_converter(load_settings())
    assert plain is DATA_CONVERTER and isinstance(plain.payload_converter, type(OURS))
    monkeypatch.setenv("COLLECTIONS_PAYLOAD_KEYS", "k1:" + "A" * 43 + "=")
    encrypted = data_converter(load_settings())
    assert encrypted.payload_codec is not None and encrypted.payload_converter_class is plain.payload_converter_class
