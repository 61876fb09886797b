"""Payload encryption: with COLLECTIONS_PAYLOAD_KEYS, no debtor's personal data
rests in Temporal's history in clear, and the codec server lets the UI read it."""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.request
from datetime import timedelta

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.converter import DataConverter

from support.codec import EncryptionCodec, PayloadKeyError, make_codec_server, new_key_spec, parse_keys
from tests.helpers import TrackingIngestor, default_event, settings_for, uid
from worker import build_worker
from workflows.model import case_workflow_id

PHONE = "+86 139 1234 5678"
ADDRESS = "Rm 7, 12 Secret Lane, Chengdu"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_payloads_round_trip_and_rotated_keys_still_decrypt():
    old, new = new_key_spec("k1"), new_key_spec("k2")
    before = EncryptionCodec.from_spec(old)
    (sealed,) = await before.encode([payload(PHONE)])
    assert PHONE.encode() not in sealed.data and sealed.metadata["encryption-key-id"] == b"k1"
    rotated = EncryptionCodec.from_spec(f"{new},{old}")  # k2 encrypts, k1 still decrypts
    assert (await rotated.decode([sealed]))[0] == payload(PHONE)
    assert (await rotated.encode([payload("x")]))[0].metadata["encryption-key-id"] == b"k2"
    plain = payload("written before encryption")
    assert await rotated.decode([plain]) == [plain]
    with pytest.raises(PayloadKeyError, match="key 'k1', which COLLECTIONS_PAYLOAD_KEYS does not hold"):
        await EncryptionCodec.from_spec(new).decode([sealed])


@pytest.mark.parametrize("spec, message", [
    ("k1:" + new_key_spec().split(":", 1)[1] + ", k1 :" + new_key_spec().split(":", 1)[1], "appears twice"),
    ("k1", "expected key-id:base64-key"),
    ("k1:not base64!", "not valid base64"),
    ("k1:c2hvcnQ=", "must be 32 bytes"),
    (" , ", "names no key"),
])
def test_bad_key_configuration_is_refused_with_its_reason(spec, message):
    with pytest.raises(PayloadKeyError, match=message):
        parse_keys(spec)


async def test_no_personal_data_rests_in_the_history_of_an_encrypted_case(env, db, task_queue):
    codec = EncryptionCodec.from_spec(new_key_spec())
    sealed = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace,
                                  data_converter=DataConverter(payload_codec=codec))
    account = f"ENC-{uid()}"
    event = default_event(account, occurred_at=await env.get_current_time(), simulation={"answers": True},
                          debtor={"phone": PHONE, "address": ADDRESS, "monthly_disposable_income": "9000.00"})
    async with build_worker(sealed, task_queue=task_queue, database_url=db.url):
        report = await TrackingIngestor(sealed, db, settings_for(db, task_queue)).ingest_lines([json.dumps(event)], source="t")
        await env.sleep(timedelta(days=4))  # voice robot and human call made
        status = await sealed.get_workflow_handle(case_workflow_id(account)).query("status")
    history = (await env.client.get_workflow_handle(case_workflow_id(account)).fetch_history()).to_json()
    # everything the server stores, payload data and metadata decoded from base64
    stored = history + "".join(base64.b64decode(b).decode("latin-1")
                               for b in re.findall(r'"([A-Za-z0-9+/]{4,}={0,2})"', history) if len(b) % 4 == 0)
    assert report.accepted == 1
    assert [r["step"] for r in status["ladder"]] == ["voice_robot", "human_call"]  # the case ran normally
    for secret in (PHONE, "139 1234 5678", ADDRESS, "Secret Lane", "9000.00"):
        assert secret not in stored
    assert "binary/encrypted" in stored


async def test_the_codec_server_decodes_for_the_web_ui_origin_only():
    codec = EncryptionCodec.from_spec(new_key_spec())
    (sealed,) = await codec.encode([payload(PHONE)])
    server = make_codec_server(codec, "127.0.0.1", 0, ["http://localhost:8233"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        def post(path: str, body: bytes, origin: str):
            req = urllib.request.Request(base + path, data=body, method="POST", headers={
                "Content-Type": "application/json", "Origin": origin, "X-Namespace": "default"})
            with urllib.request.urlopen(req) as resp:
                return json.loads(resp.read()), resp.headers

        body = json_format.MessageToJson(Payloads(payloads=[sealed])).encode()
        decoded, headers = post("/decode?preserveStorageRefs=true", body, "http://localhost:8233")  # as the UI asks
        assert json_format.ParseDict(decoded, Payloads()).payloads[0] == payload(PHONE)
        assert headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        _, other = post("/decode", body, "http://evil.example")
        assert other["Access-Control-Allow-Origin"] is None  # a browser elsewhere cannot read the answer
        preflight = urllib.request.Request(base + "/decode", method="OPTIONS", headers={
            "Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"})
        with urllib.request.urlopen(preflight) as resp:
            assert resp.status == 204 and "X-Namespace" in resp.headers["Access-Control-Allow-Headers"]
        with pytest.raises(urllib.error.HTTPError) as bad:
            post("/decode", b"{not json", "http://localhost:8233")
        assert bad.value.code == 400
        # a rebound name (a page elsewhere resolving to this address) is refused
        rebound = urllib.request.Request(base + "/decode", data=body, method="POST", headers={
            "Content-Type": "application/json", "Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound)
        assert refused.value.code == 403
    finally:
        server.shutdown()
        server.server_close()
