"""A byte buffer written by a download thread and read, as it grows, by the record emitter.

It lets the tap fetch the next windows' results while it still emits the current one, with
memory bounded: past `memory_limit` bytes the data lives in an anonymous temporary file. The
reader gets bytes as soon as they arrive, so the window being emitted still streams.
"""

from __future__ import annotations

import io
import tempfile
import threading
import typing as t

from tap_looker_query.errors import raise_if_stopped

#: How often a reader waiting for data looks whether the run was asked to stop.
_STOP_CHECK = 0.2


class Spool(io.RawIOBase):
    """Append-only bytes with one concurrent reader; `finish` or `fail` ends the writing."""

    def __init__(
        self, memory_limit: int = 4 * 1024 * 1024, stop: threading.Event | None = None
    ) -> None:
        """Keep up to `memory_limit` unread bytes in memory before spilling to disk.

        A reader waiting for data raises `TerminatedError` soon after `stop` is set.
        """
        super().__init__()
        self._stop = stop or threading.Event()
        self._memory_limit = memory_limit
        self._cond = threading.Condition()
        self._memory = bytearray()
        self._file: t.BinaryIO | None = None
        self._written = 0
        self._read_pos = 0  # bytes handed to the reader
        self._memory_base = 0  # stream offset of self._memory[0]
        self._file_base = 0  # stream offset of the temporary file's first byte
        self._done = False
        self._error: BaseException | None = None
        self.cancelled = False

    # Writer side

    def write_chunk(self, data: bytes) -> None:
        """Append bytes (called by the download thread)."""
        with self._cond:
            if self._file is None and len(self._memory) + len(data) > self._memory_limit:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
                self._file.write(self._memory)
                self._file_base = self._memory_base
                self._memory = bytearray()
            if self._file is not None:
                self._file.seek(0, io.SEEK_END)
                self._file.write(data)
            else:
                self._memory += data
            self._written += len(data)
            self._cond.notify_all()

    def finish(self) -> None:
        """The body is complete."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The download failed; the reader raises `error` once it has read what arrived."""
        with self._cond:
            self._error = error
            self._done = True
            self._cond.notify_all()

    # Reader side

    def readable(self) -> bool:
        """A spool is read sequentially."""
        return True

    def readinto(self, buffer: t.Any) -> int:  # noqa: ANN401 - a writable buffer
        """Read what has arrived, waiting for more; 0 at the end of a complete body."""
        view = memoryview(buffer).cast("B")
        with self._cond:
            while self._read_pos >= self._written and not self._done:
                raise_if_stopped(self._stop)
                self._cond.wait(_STOP_CHECK)
            if self._read_pos >= self._written:
                if self._error is not None:
                    raise self._error
                return 0
            count = min(len(view), self._written - self._read_pos)
            if self._file is not None:
                self._file.seek(self._read_pos - self._file_base)
                data = self._file.read(count)
                count = len(data)
                view[:count] = data
            else:
                start = self._read_pos - self._memory_base
                view[:count] = self._memory[start : start + count]
                # Drop what was read so memory holds only unread bytes.
                if start + count > self._memory_limit // 2:
                    del self._memory[: start + count]
                    self._memory_base += start + count
            self._read_pos += count
            return count

    def close(self) -> None:
        """Release the buffer and any temporary file; tells the writer to stop."""
        with self._cond:
            self.cancelled = True
            if self._file is not None:
                self._file.close()
                self._file = None
            self._memory = bytearray()
            self._cond.notify_all()
        super().close()
