"""The download spool: the reader sees bytes as they arrive; memory stays bounded."""

from __future__ import annotations

import threading
import time

import pytest

from tap_looker_query.engine.spool import Spool


def test_reader_gets_everything_written_by_another_thread_including_spilled_bytes():
    spool = Spool(memory_limit=1024)
    payload = bytes(range(256)) * 400  # 100 KiB, spills to a temporary file

    def write():
        for start in range(0, len(payload), 777):
            spool.write_chunk(payload[start : start + 777])
            time.sleep(0)
        spool.finish()

    writer = threading.Thread(target=write)
    writer.start()
    received = bytearray()
    while chunk := spool.read(4096):
        received += chunk
    writer.join()
    assert bytes(received) == payload
    spool.close()


def test_reader_raises_the_writers_error_after_the_bytes_that_arrived():
    spool = Spool()
    spool.write_chunk(b"abc")
    spool.fail(ConnectionError("reset"))
    assert spool.read(10) == b"abc"
    with pytest.raises(ConnectionError, match="reset"):
        spool.read(10)


def test_memory_holds_only_unread_bytes():
    spool = Spool(memory_limit=1000)
    for _ in range(50):
        spool.write_chunk(b"x" * 100)
        assert spool.read(100) == b"x" * 100
    assert len(spool._memory) < 1000
    assert spool._file is None
