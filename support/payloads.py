"""How the product's values cross Temporal: the SDK's JSON converter, with each
dataclass's field types resolved once.

The SDK rebuilds a dataclass from a payload by its type hints, and asks
``typing.get_type_hints`` for them at every conversion of every nested
dataclass.  The product's dataclasses postpone their annotations
(``from __future__ import annotations``), so each ask compiles and evaluates
every field's annotation string again: decoding a case's input took 0.60 ms,
0.11 ms with the hints resolved once, and decoding was about a sixth of the
worker's CPU while cases opened (py-spy, docs/benchmarks.md).  The payloads
are the same bytes either way; only decoding is cheaper.

Every client and worker of the product uses :data:`DATA_CONVERTER` (through
:func:`support.codec.data_converter`, which adds encryption when keys are
set); a client with the SDK's default converter reads and writes the same
payloads.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter, DataConverter, DefaultPayloadConverter, JSONPlainPayloadConverter,
    JSONTypeConverter, value_to_type,
)


@functools.lru_cache(maxsize=1024)
def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, resolved type, passed to ``__init__``) of each field of a dataclass."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.init) for f in dataclasses.fields(cls))


class DataclassesOnce(JSONTypeConverter):
    """A dataclass from a JSON object as the SDK builds it (fields it does
    not know are ignored, a missing required field fails, ``init=False``
    fields are set after), with the class's field types resolved once."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict)):
            return JSONTypeConverter.Unhandled
        passed, later = {}, {}
        for name, field_type, init in _fields(hint):
            if name in value:
                try:
                    converted = value_to_type(field_type, value[name], [self])
                except Exception as err:
                    raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
                (passed if init else later)[name] = converted
        obj = hint(**passed)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default payload converter, its JSON part decoding dataclasses with :class:`DataclassesOnce`."""

    def __init__(self) -> None:
        json_plain = JSONPlainPayloadConverter(custom_type_converters=[DataclassesOnce()])
        super().__init__(*(json_plain if isinstance(c, JSONPlainPayloadConverter) else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))


DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)
