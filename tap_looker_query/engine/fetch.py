"""Downloads ahead of the record emitter: the thread model of the whole tap.

The main thread runs the Singer SDK's loop: it parses result bodies, builds records and
writes them. Each query runs on a `looker-fetch` thread of the `Prefetcher`, which streams the
body into a `Spool` (memory up to 4 MiB, then a temporary file) while the main thread reads
from it as it grows. Before its query is sent, a download waits for one of the Looker client's
query slots, so no more than `max_concurrent_queries` queries are in flight across all streams;
the pool has as many threads, and each stream keeps as many windows fetching ahead of the one
it emits. Cancelling a download closes its spool; the thread notices at its next chunk.
"""

from __future__ import annotations

import typing as t
from concurrent.futures import ThreadPoolExecutor

from tap_looker_query.engine.formats import FORMATS, RowSource
from tap_looker_query.engine.spool import Spool
from tap_looker_query.errors import raise_if_stopped

if t.TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from tap_looker_query.looker.query import QueryBody

#: Runs a query and yields its body in chunks (`looker.runs.QueryRuns.stream_run`).
StreamRun = t.Callable[["QueryBody", str], "Iterator[bytes]"]


class Download:
    """One query run downloading in the background into a spool."""

    def __init__(
        self, result_format: str, source: RowSource, stop: threading.Event | None = None
    ) -> None:
        """A download whose body is parsed as `result_format` for `source`'s fields."""
        self.spool = Spool(stop=stop)
        self._parse = FORMATS[result_format]
        self._source = source

    def run(self, stream_run: StreamRun, body: QueryBody, result_format: str) -> None:
        """Stream the body into the spool (on a download thread)."""
        try:
            for chunk in stream_run(body, result_format):
                if self.spool.cancelled:
                    return
                self.spool.write_chunk(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self.spool.fail(exc)
        else:
            self.spool.finish()

    def rows(self) -> Iterator[list[t.Any]]:
        """The result's rows in batches, as the body arrives."""
        return self._parse(self.spool, self._source)

    def cancel(self) -> None:
        """Stop the download and release its buffer."""
        self.spool.close()


class Prefetcher:
    """The download threads, shared by every stream of a run."""

    def __init__(self, stream_run: StreamRun, workers: int, stop: threading.Event) -> None:
        """`workers` threads running queries through `stream_run`; none start after `stop`."""
        self._stream_run = stream_run
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="looker-fetch")
        self._stop = stop

    def start(self, body: QueryBody, result_format: str, source: RowSource) -> Download:
        """Start downloading the result of `body`.

        Raises:
            TerminatedError: the run was asked to stop.
        """
        raise_if_stopped(self._stop)
        download = Download(result_format, source, self._stop)
        self._pool.submit(download.run, self._stream_run, body, result_format)
        return download

    def starter(self, result_format: str, source: RowSource) -> Callable[[QueryBody], Download]:
        """`start` for one stream's format and fields."""
        return lambda body: self.start(body, result_format, source)

    def close(self) -> None:
        """Stop the threads; downloads not started yet are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)
