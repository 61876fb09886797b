"""Any Temporal: the connection follows the `temporal` CLI's conventions
(temporalio.envconfig): a TOML profile and TEMPORAL_* variables, TLS and API
key included, for the worker and the CLI alike."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from support.settings import SettingsError, load_settings
from support.temporal import connect


def target_of(env) -> tuple[str, int]:
    host, port = env.client.service_client.config.target_host.rsplit(":", 1)
    return host, int(port)


async def reachable(settings) -> str:
    client = await connect(settings)
    await client.workflow_service.get_system_info(GetSystemInfoRequest())  # a real call through the connection
    return client.service_client.config.target_host


async def test_a_profile_file_selects_the_server_and_variables_override_it(env, tmp_path, monkeypatch):
    host, port = target_of(env)
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.default]\naddress = "127.0.0.1:1"\n\n'
                      f'[profile.test]\naddress = "{host}:{port}"\nnamespace = "{env.client.namespace}"\n')
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "test")
    settings = load_settings()
    assert (settings.temporal_address, settings.temporal_namespace) == (f"{host}:{port}", env.client.namespace)
    assert await reachable(settings) == f"{host}:{port}"

    monkeypatch.setenv("TEMPORAL_PROFILE", "default")  # the profile's dead address...
    assert load_settings().temporal_address == "127.0.0.1:1"
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"{host}:{port}")  # ...and a variable over it, as the CLI does
    assert await reachable(load_settings()) == f"{host}:{port}"

    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    with pytest.raises(SettingsError, match="TEMPORAL_PROFILE='staging' .* not accepted: Profile 'staging' not found"):
        load_settings()


def _certificate(subject: str, key, issuer: x509.Name, signer, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def self_signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and the proxy's certificate for localhost, signed by it: (ca, cert, key) files."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]), ca_key,
                      ca=True)
    cert = _certificate("localhost", key, ca.subject, ca_key, ca=False)
    paths = tmp_path / "ca.pem", tmp_path / "proxy.pem", tmp_path / "proxy.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@asynccontextmanager
async def tls_proxy(cert: Path, key: Path, upstream: tuple[str, int]) -> AsyncIterator[int]:
    """A TLS-terminating proxy on 127.0.0.1 in front of the (plaintext) test server."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])  # gRPC

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_tls_connection_through_a_tls_terminating_proxy(env, tmp_path, monkeypatch):
    ca, cert, key = self_signed(tmp_path)
    async with tls_proxy(cert, key, target_of(env)) as port:
        for name in ("TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TEMPORAL_ADDRESS", f"localhost:{port}")
        monkeypatch.setenv("TEMPORAL_NAMESPACE", env.client.namespace)
        monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(ca))
        monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "localhost")
        settings = load_settings()
        assert settings.temporal_tls is True
        assert await reachable(settings) == f"localhost:{port}"
        monkeypatch.delenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH")  # the system's CAs do not know this proxy
        monkeypatch.setenv("TEMPORAL_TLS", "true")
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(reachable(load_settings()), 30)
