"""The Temporal connection, from the settings (worker, CLI and intake alike)."""

from __future__ import annotations

import functools

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from support.codec import data_converter
from support.logs import temporal_runtime
from support.settings import Settings
from workflows.search import DEFINITIONS

INDEXED_VALUE_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
}


@functools.cache
def logging_runtime() -> Runtime:
    """The process's Temporal runtime for clients: Core's (Rust) log lines go
    through support/logs.py (JSON on stderr, masked), never to stdout, where
    they would break a command's ``--json`` output."""
    return temporal_runtime()


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client; each call waits at most ``settings.temporal_timeout`` seconds
    (COLLECTIONS_TEMPORAL_TIMEOUT, retries included) for an unreachable server."""
    return await Client.connect(
        **settings.temporal_connect_config(),  # address, namespace, TLS, API key: as the temporal CLI
        runtime=runtime or logging_runtime(),
        retry_config=RetryConfig(max_elapsed_time_millis=int(settings.temporal_timeout * 1000), max_retries=1000),
        # payloads encrypted when COLLECTIONS_PAYLOAD_KEYS is set (support/codec.py)
        data_converter=data_converter(settings),
    )


async def register_search_attributes(client: Client) -> list[str]:
    """Register the case's search attributes (workflows/search.py) on the
    client's namespace through the operator service; returns the names that
    were missing. Registering again is harmless."""
    try:
        existing = set((await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))).custom_attributes)
    except RPCError as e:  # the time-skipping test server cannot list them
        if e.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {name: kind for name, kind in DEFINITIONS.items() if name not in existing}
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace,
                    search_attributes={name: INDEXED_VALUE_TYPES[kind] for name, kind in missing.items()},
                )
            )
        except RPCError as e:
            if e.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            return []
    return sorted(missing)
