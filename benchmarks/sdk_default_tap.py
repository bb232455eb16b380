"""The same tap and records through a default-configured singer-sdk stream.

Only the two levers the tap pulls are undone: the SDK's default writer
(`singer_sdk.io_base.SingerWriter`, i.e. `SimpleSingerWriter`: `json.dumps` and a flush per
message) instead of our buffered msgspec writer, and the SDK's default RECURSIVE type
conformance instead of NONE. Queries, streaming, parsing and our conversion are unchanged, so
the records are identical.

    python -m benchmarks.sdk_default_tap --config config.json > /dev/null
"""

from __future__ import annotations

import typing as t

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.io_base import SingerWriter

from tap_looker_query.stream import QueryStream
from tap_looker_query.tap import TapLookerQuery

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream


class DefaultQueryStream(QueryStream):
    """QueryStream with the SDK's default type conformance."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE


class DefaultSdkTap(TapLookerQuery):
    """TapLookerQuery with the SDK's default message writer and default-conforming streams."""

    # The tap's attribute is inferred as type[BufferedMsgSpecWriter]; the SDK takes any writer.
    message_writer_class = SingerWriter  # type: ignore[assignment]

    def discover_streams(self) -> list[Stream]:
        return [
            DefaultQueryStream(self, run=self.run, spec=stream.spec, schema=stream.schema)
            for stream in t.cast("list[QueryStream]", super().discover_streams())
        ]


if __name__ == "__main__":
    DefaultSdkTap.cli()
