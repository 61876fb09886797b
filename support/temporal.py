"""The Temporal connection, from the settings (worker, CLI and intake alike)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from support.codec import data_converter
from support.settings import Settings


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        runtime=runtime,
        # payloads encrypted when COLLECTIONS_PAYLOAD_KEYS is set (support/codec.py)
        data_converter=data_converter(settings),
    )
