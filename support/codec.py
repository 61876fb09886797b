"""Encryption of Temporal payloads: personal data never rests in Temporal in clear.

A case's input carries the debtor's phone, address and the raw default
event; activity inputs and results carry them too.  Temporal stores all of
these in its history and shows them in the Web UI to anyone who can open it.
With ``COLLECTIONS_PAYLOAD_KEYS`` set, every payload is encrypted with
AES-256-GCM before it leaves the process, and decrypted when it comes back:

    COLLECTIONS_PAYLOAD_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"

The first key encrypts; every key listed decrypts (so keys rotate by putting
a new one first and keeping the old ones until no history needs them).  Each
payload names its key id in its metadata.  The worker, ``starter.py`` and any
other client of the same namespace must share the keys.  Search attributes
are not payloads and are never encrypted: they hold no personal data.

Supervisors read encrypted cases in the Web UI through the codec server
(``python starter.py codec-server``), which the UI calls from the browser;
run it where only authorised staff can reach it.  ``python starter.py
new-payload-key`` prints a fresh key.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hmac
import json
import secrets
import sys
import threading
import os
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from support.logs import get_logger
from support.payloads import DATA_CONVERTER

if TYPE_CHECKING:
    from support.settings import Settings

ENV = "COLLECTIONS_PAYLOAD_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """The payload keys are misconfigured, or a payload's key is unknown."""


def parse_keys(spec: str) -> tuple[str, dict[str, bytes]]:
    """(active key id, {key id: key}) from ``id:base64,id:base64``."""
    keys: dict[str, bytes] = {}
    active = None
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        kid = kid.strip()
        if not sep or not kid:
            raise PayloadKeyError(f"{ENV}: expected key-id:base64-key, got {part[:12]!r}…")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            raise PayloadKeyError(f"{ENV}: key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise PayloadKeyError(f"{ENV}: key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        if kid in keys:
            raise PayloadKeyError(f"{ENV}: key id {kid!r} appears twice")
        keys[kid] = key
        active = active or kid
    if active is None:
        raise PayloadKeyError(f"{ENV} is set but names no key")
    return active, keys


def new_key_spec(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, active: str, keys: dict[str, bytes]) -> None:
        self.active = active
        self.ciphers = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def from_spec(cls, spec: str) -> EncryptionCodec:
        return cls(*parse_keys(spec))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            # the key id is bound to the ciphertext as associated data
            data = self.ciphers[self.active].encrypt(nonce, p.SerializeToString(), self.active.encode())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: self.active.encode()}, data=nonce + data))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)  # written before encryption was turned on
                continue
            kid = p.metadata.get(KEY_ID, b"").decode()
            cipher = self.ciphers.get(kid)
            if cipher is None:
                raise PayloadKeyError(f"payload encrypted with key {kid!r}, which {ENV} does not hold")
            plain = cipher.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], kid.encode())
            out.append(Payload.FromString(plain))
        return out


def codec_from_settings(settings: Settings) -> EncryptionCodec | None:
    spec = settings.payload_keys.get_secret_value().strip() if settings.payload_keys else ""
    return EncryptionCodec.from_spec(spec) if spec else None


def data_converter(settings: Settings) -> DataConverter:
    """The product's converter (:mod:`support.payloads`), encrypting when keys are set."""
    codec = codec_from_settings(settings)
    if codec is None:
        return DATA_CONVERTER
    # failure messages and stack traces are encrypted too (an error may quote data)
    return dataclasses.replace(DATA_CONVERTER, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


# ---- the codec server the Web UI calls ------------------------------------------


MAX_BODY = 8 * 1024 * 1024  # the UI sends a page of payloads at a time
REQUEST_TIMEOUT_SECONDS = 10  # a stalled upload gives its thread back
MAX_CONCURRENT_REQUESTS = 16


class CodecServer(ThreadingHTTPServer):
    """Temporal's remote codec protocol for the Web UI: ``POST /decode`` and
    ``POST /encode`` with ``{"payloads": [...]}`` in protobuf JSON, and CORS
    preflights for the UI's origins.

    Every request must carry the server's token: as the first path segment
    (``http://host:port/TOKEN`` is the endpoint to give the UI, which adds
    ``/decode``) or as ``Authorization: Bearer TOKEN``.  Requests are bounded
    in size, time and number at once; errors are JSON log lines, never
    tracebacks."""

    daemon_threads = True

    def __init__(self, codec: EncryptionCodec, host: str, port: int, allow_origins: Sequence[str], token: str,
                 *, max_concurrent: int = MAX_CONCURRENT_REQUESTS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        if len(token) < 16:
            raise PayloadKeyError("the codec server's token must be at least 16 characters")
        super().__init__((host, port), _CodecHandler)
        self.codec = codec
        self.token = token
        self.origins = set(allow_origins)
        self.local_names = {f"{n}:{self.server_address[1]}" for n in (host, "localhost", "127.0.0.1", "[::1]")}
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.request_timeout = request_timeout
        self.log = get_logger(component="codec-server")

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):  # full: refuse at once rather than queue threads
            self.log.warning("codec request refused: too many at once", client=client_address[0])
            try:
                request.settimeout(0.2)
                request.recv(MAX_BODY)  # what has arrived, so closing does not reset the connection
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:  # a dropped connection: one line, no traceback
        self.log.warning("codec request failed", client=client_address[0], error=repr(sys.exc_info()[1]))


class _CodecHandler(BaseHTTPRequestHandler):
    server: CodecServer

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # a stalled upload gives its thread back
        super().setup()

    def _cors(self) -> None:
        origin = self.headers.get("Origin")
        if origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Vary", "Origin")

    def _reply(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self._cors()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        self._reply(code, json.dumps({"error": message}).encode())

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(204)
        self._cors()
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        # the UI sends its own headers (X-Namespace, Caller-Type, Authorization...): allow what it asks
        asked = self.headers.get("Access-Control-Request-Headers")
        self.send_header("Access-Control-Allow-Headers", asked or "Content-Type, X-Namespace, Authorization")
        self.end_headers()

    def _authorised(self, segments: list[str]) -> bool:
        given = segments[0] if len(segments) == 2 else ""
        bearer = self.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            given = given or bearer.removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.server.token.encode())

    def _refusal(self, segments: list[str]) -> tuple[int, str] | None:
        if not segments or segments[-1] not in ("decode", "encode") or len(segments) > 2:
            return 404, "POST /decode or /encode"
        # DNS rebinding: a page elsewhere that resolves its name to this
        # address still sends its own Host; answer only to our names.
        if self.headers.get("Host") not in self.server.local_names:
            return 403, "unexpected Host"
        if not self._authorised(segments):
            return 401, "a valid token is required"
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return (413 if length > MAX_BODY else 400), "bad Content-Length"
        return None

    def do_POST(self) -> None:  # noqa: N802
        segments = [p for p in urlsplit(self.path).path.split("/") if p]  # the UI adds a query string
        refusal = self._refusal(segments)
        if refusal is not None:
            self.server.log.warning("codec request refused", status=refusal[0], reason=refusal[1])
            self._error(*refusal)
            return
        try:
            payloads = json_format.Parse(self.rfile.read(int(self.headers["Content-Length"] or 0)), Payloads()).payloads
            work = self.server.codec.decode if segments[-1] == "decode" else self.server.codec.encode
            result = Payloads(payloads=asyncio.run(work(payloads)))
            out = json.dumps(json_format.MessageToDict(result)).encode()
        except Exception as e:  # a bad request or an unknown key: say so, keep serving
            self._error(400, f"{type(e).__name__}: {e}")
            return
        self._reply(200, out)

    def log_message(self, format: str, *args) -> None:  # one line per request, no payloads, no token
        self.server.log.info("codec request", method=self.command,
                             path="/" + urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1])


def new_codec_token() -> str:
    return secrets.token_urlsafe(24)


def make_codec_server(codec: EncryptionCodec, host: str = "127.0.0.1", port: int = 8081,
                      allow_origins: Sequence[str] = ("http://localhost:8233", "http://127.0.0.1:8233"),
                      *, token: str, **limits: float) -> CodecServer:
    return CodecServer(codec, host, port, allow_origins, token, **limits)
