"""The Singer message writer: msgspec encoding, flushed at each STATE instead of each record.

`MsgSpecWriter` flushes stdout after every message, one system call per record, and with
`PYTHONUNBUFFERED=1` (common in containers and schedulers) every write is a system call anyway.
Records only need to reach the target before the STATE that covers them, so this writer buffers
them itself and flushes before returning from any other message (SCHEMA, STATE, ...). A crash
can then lose only records that no emitted STATE claims.
"""

from __future__ import annotations

import io
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.singerlib import RecordMessage

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Message


class BufferedMsgSpecWriter(MsgSpecWriter):
    """msgspec-encoded messages; stdout is flushed at every message except RECORD."""

    _BUFFER_SIZE = 256 * 1024
    _stdout: t.Any = None
    _buffered: t.BinaryIO | None = None

    def _output(self) -> t.BinaryIO:
        """A buffered binary stdout (wrapping the raw one when Python runs unbuffered)."""
        stdout = sys.stdout.buffer
        if stdout is not self._stdout:
            if self._buffered is not None:
                self._buffered.flush()
            self._stdout = stdout
            if isinstance(stdout, io.RawIOBase):
                # A second, buffered handle on the same descriptor; closing it leaves fd 1 open.
                self._buffered = open(  # noqa: SIM115 - lives as long as stdout
                    stdout.fileno(), "wb", buffering=self._BUFFER_SIZE, closefd=False
                )
            else:
                self._buffered = stdout
        return t.cast("t.BinaryIO", self._buffered)

    @override
    def write_message(self, message: Message) -> None:
        """Write one message; flush unless it is a record.

        A record takes the short way (the same bytes as `format_message`) to the output chosen
        at the last other message: every stream starts with SCHEMA, so that is where a swapped
        `sys.stdout` is picked up.
        """
        if message.__class__ is RecordMessage and self._buffered is not None:
            self._buffered.write(serialize_jsonl(message.to_dict()))
            return
        output = self._output()
        output.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            output.flush()
            sys.stdout.flush()
