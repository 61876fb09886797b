"""Payload encryption: with COLLECTIONS_PAYLOAD_KEYS, no debtor's personal data
rests in Temporal's history in clear, and the codec server lets the UI read it."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
from contextlib import contextmanager
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


TOKEN = "t-" + "x" * 30


@contextmanager
def codec_server(codec, **kw):
    server = make_codec_server(codec, "127.0.0.1", 0, ["http://localhost:8233"], token=TOKEN, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, body: bytes, origin: str = "http://localhost:8233", **headers):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Origin": origin, "X-Namespace": "default", **headers})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read()), resp.headers


def refused(url: str, body: bytes, **headers) -> tuple[int, dict]:
    with pytest.raises(urllib.error.HTTPError) as err:
        post(url, body, **headers)
    return err.value.code, json.loads(err.value.read())


async def test_the_codec_server_decodes_for_the_web_ui_origin_only():
    codec = EncryptionCodec.from_spec(new_key_spec())
    (sealed,) = await codec.encode([payload(PHONE)])
    body = json_format.MessageToJson(Payloads(payloads=[sealed])).encode()
    with codec_server(codec) as base:
        endpoint = f"{base}/{TOKEN}"  # what the UI is given; it adds /decode and a query string
        decoded, headers = post(endpoint + "/decode?preserveStorageRefs=true", body)
        assert json_format.ParseDict(decoded, Payloads()).payloads[0] == payload(PHONE)
        assert headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        _, other = post(endpoint + "/decode", body, "http://evil.example")
        assert other["Access-Control-Allow-Origin"] is None  # a browser elsewhere cannot read the answer
        preflight = urllib.request.Request(endpoint + "/decode", method="OPTIONS", headers={
            "Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"})
        with urllib.request.urlopen(preflight) as resp:
            assert resp.status == 204 and "X-Namespace" in resp.headers["Access-Control-Allow-Headers"]
        assert refused(endpoint + "/decode", b"{not json")[0] == 400
        # a rebound name (a page elsewhere resolving to this address) is refused
        assert refused(endpoint + "/decode", body, Host="evil.example:80")[0] == 403


async def test_the_codec_server_decodes_only_for_its_token():
    codec = EncryptionCodec.from_spec(new_key_spec())
    (sealed,) = await codec.encode([payload(PHONE)])
    body = json_format.MessageToJson(Payloads(payloads=[sealed])).encode()
    with codec_server(codec) as base:
        for url, headers in ((f"{base}/decode", {}), (f"{base}/wrong-token-000000000/decode", {}),
                             (f"{base}/decode", {"Authorization": "Bearer wrong-token-000000000"}),
                             (f"{base}/decode", {"Host": f"localhost:{base.rsplit(':', 1)[1]}"})):
            code, answer = refused(url, body, **headers)
            assert (code, answer) == (401, {"error": "a valid token is required"}), url
        decoded, _ = post(f"{base}/decode", body, Authorization=f"Bearer {TOKEN}")
        assert json_format.ParseDict(decoded, Payloads()).payloads[0] == payload(PHONE)
    with pytest.raises(PayloadKeyError, match="at least 16"):
        make_codec_server(codec, "127.0.0.1", 0, [], token="short")


async def test_stalled_uploads_time_out_and_a_flood_is_turned_away(log_stream):
    codec = EncryptionCodec.from_spec(new_key_spec())
    with codec_server(codec, max_concurrent=2, request_timeout=1) as base:
        host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
        stalled = []
        for _ in range(2):  # promise a body and never send it: each holds a slot until its timeout
            s = socket.create_connection((host, port))
            s.sendall(f"POST /{TOKEN}/decode HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Content-Length: 100\r\n\r\n".encode())
            stalled.append(s)
        await asyncio.sleep(0.3)
        flood = socket.create_connection((host, port))
        flood.sendall(f"POST /{TOKEN}/decode HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Content-Length: 2\r\n\r\n{}".encode())
        flood.settimeout(5)
        assert flood.recv(1024).startswith(b"HTTP/1.1 503")  # turned away at once, no thread spent on it
        flood.close()
        for s in stalled:  # after its timeout the server answers and hangs up
            s.settimeout(10)
            answer = b""
            while chunk := s.recv(1024):
                answer += chunk
            assert answer.startswith(b"HTTP/1.0 400"), answer
            s.close()
        await asyncio.sleep(0.2)
        answer, _ = post(f"{base}/{TOKEN}/decode", json.dumps({"payloads": []}).encode())
        assert answer == {}  # the slots are free again
    text = log_stream.getvalue()
    assert "Traceback" not in text
