"""The Singer message writer: msgspec encoding, flushed at each STATE instead of each record.

`MsgSpecWriter` flushes stdout after every message, one system call per record. Records only
need to reach the target before the STATE that covers them, so this writer lets records fill
the buffer and flushes before returning from any other message (SCHEMA, STATE, ...). A crash
can then lose only records that no emitted STATE claims.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message

if t.TYPE_CHECKING:
    from typing_extensions import override
else:
    try:
        from typing import override
    except ImportError:  # Python < 3.12
        from typing_extensions import override


class BufferedMsgSpecWriter(MsgSpecWriter):
    """msgspec-encoded messages; stdout is flushed at every message except RECORD."""

    @override
    def write_message(self, message: Message) -> None:
        """Write one message; flush unless it is a record."""
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
