"""The window reader: every row of a spec's windows, in order, exactly once.

Rows come back sorted by the datetime field, so a read is resumable at any second. Rows of
the newest second in a batch are held back until the next second starts: a cut-off body or a
truncated batch then resumes at that second without losing or repeating a row. A window that
returns `limit` rows continues from its last second, or re-reads a single crowded second
without a limit; a window too slow for Looker (`QueryTimeoutError`) is read as two halves.

Everything a read needs is passed in: the spec, a `start(body)` that runs a query and gives
its rows, the record builder. There is one retry loop (`_tries`); whether a failure is worth
another try is the class of the error (`errors.RetriableError`).
"""

from __future__ import annotations

import threading
import time
import typing as t
from collections import deque
from dataclasses import dataclass, replace

from tap_looker_query.engine.formats import TableRows, table_rows
from tap_looker_query.engine.plan import ONE_SECOND, Window, floor_second, parse_instant
from tap_looker_query.errors import (
    QueryTimeoutError,
    RetriableError,
    StreamFailedError,
    TapLookerError,
    ValueMismatchError,
    raise_if_stopped,
)
from tap_looker_query.specs.model import LOOKER_DEFAULT_LIMIT, UNLIMITED
from tap_looker_query.system_activity import own_client_id

if t.TYPE_CHECKING:
    import datetime as dt
    import logging
    import types
    from collections.abc import Callable, Generator, Iterator, Sequence

    from tap_looker_query.engine.records import RecordBuilder
    from tap_looker_query.looker.query import QueryBody
    from tap_looker_query.progress import Progress
    from tap_looker_query.specs.model import QuerySpec

Record = dict[str, t.Any]


class Pending(t.Protocol):
    """A query that is running (or downloaded): its rows, and a way to stop it."""

    def rows(self) -> Iterator[list[t.Any]]:
        """The result's rows in batches."""
        ...

    def cancel(self) -> None:
        """Stop the query's download."""
        ...


@dataclass(frozen=True)
class WindowDone:
    """A window was read completely: its rows are all emitted, its bookmark can be saved."""

    window: Window
    rows: int
    seconds: float


class _Try:
    """One try at a query. A retriable failure inside it is kept, and the caller tries again."""

    def __init__(self, fail: Callable[[str], StreamFailedError]) -> None:
        self.error: RetriableError | None = None
        self._fail = fail

    def __enter__(self) -> t.Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> bool:
        if isinstance(exc, RetriableError):
            self.error = exc
            return True
        if isinstance(exc, ValueMismatchError):
            msg = f"Looker returned a value of the wrong type: {exc}"
            raise self._fail(msg) from exc
        if isinstance(exc, TapLookerError) and not isinstance(exc, StreamFailedError):
            raise self._fail(str(exc)) from exc
        return False


class _HeldBack:
    """One query's records, released whole second by whole second."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.held: list[Record] = []
        self.held_second: str | None = None
        #: The held second's full value, offset included: where a continuation resumes.
        self.held_value: str | None = None
        self.rows = 0
        self.emitted = 0

    def add(self, records: list[Record], rows: int | None = None) -> list[Record]:
        """The records now complete: everything before the newest second seen so far.

        `rows` counts the rows of Looker's table behind them (a pivoted row gives several
        records; the row limit counts table rows).
        """
        self.rows += len(records) if rows is None else rows
        if not records:
            return []
        key = self.key
        last_second = _second(records[-1][key])
        cut = len(records) - 1
        while cut >= 0 and _second(records[cut][key]) == last_second:
            cut -= 1
        if cut >= 0:
            ready = [*self.held, *records[: cut + 1]]
            self.held = records[cut + 1 :]
        elif self.held_second == last_second:
            ready = []
            self.held.extend(records)
        else:
            ready, self.held = self.held, records
        self.held_second = last_second
        self.held_value = records[-1][key]
        self.emitted += len(ready)
        return ready

    def rest_of(self, window: Window) -> Window:
        """What of `window` is still to read: from the second held back on."""
        return window.from_(self.resume_at) if self.held_value else window

    @property
    def resume_at(self) -> dt.datetime:
        """The instant of the second held back (its offset kept: any query time zone)."""
        return floor_second(parse_instant(str(self.held_value)))


class WindowReader:
    """Reads one spec's windows (or its single full-table query) into batches of records."""

    def __init__(  # noqa: PLR0913 - everything a read needs, passed in
        self,
        spec: QuerySpec,
        *,
        start: Callable[[QueryBody], Pending],
        builder: RecordBuilder,
        tz: dt.tzinfo,
        tz_name: str,
        max_retries: int,
        progress: Progress,
        logger: logging.Logger,
        stop: threading.Event | None = None,
    ) -> None:
        """Read `spec`'s queries through `start`, building records with `builder`.

        Once `stop` is set, reading ends at the next batch with `TerminatedError`.
        """
        self.stop = stop or threading.Event()
        self.spec = spec
        self._start = start
        self.builder = builder
        self.tz = tz
        self.tz_name = tz_name
        self.max_retries = max_retries
        self.progress = progress
        self.stats = progress.stats
        self.logger = logger
        self.name = spec.name
        self.key = spec.replication_property or ""
        self.limit = spec.limit or LOOKER_DEFAULT_LIMIT
        self._told_columns = False

    # Queries

    def body(self, window: Window, limit: int) -> QueryBody:
        """The query of one window: the spec's filters and the window's on the datetime field."""
        spec = self.spec
        field = t.cast("str", spec.datetime_field)
        body = spec.body(
            filters={**spec.filters, field: window.filter_expression(self.tz)},
            limit=limit,
            sorts=spec.sorts_by_datetime,
            query_timezone=self.tz_name,
            client_id=own_client_id(),
        )
        return replace(body, label=f"{body.label}, window {window.describe(self.tz)}")

    def fetch(self, window: Window, limit: int | None = None) -> Pending:
        """Start the query of `window` (with the window limit unless told otherwise)."""
        self.progress.stats.queries += 1
        return self._start(self.body(window, self.limit if limit is None else limit))

    def _failure(self, window: Window | None, reason: str) -> StreamFailedError:
        where = f"window {window.describe(self.tz)}" if window else "the query"
        return StreamFailedError(f"{self.spec.label}, {where}: {reason}")

    def _tries(self, where: Callable[[], Window | None]) -> Iterator[_Try]:
        """The one retry loop: a new try after each retriable failure, up to `max_retries`."""
        retries = 0
        while True:
            attempt = _Try(lambda reason: self._failure(where(), reason))
            yield attempt
            if attempt.error is None:
                return
            if retries >= self.max_retries:
                reason = f"{attempt.error} (after {retries} retries)"
                raise self._failure(where(), reason) from attempt.error
            retries += 1
            self.stats.retries += 1

    # Incremental windows

    def warm(self, windows: Sequence[Window], ahead: int) -> deque[tuple[Window, Pending]]:
        """Start the first `ahead` windows' queries now."""
        return deque((window, self.fetch(window)) for window in windows[:ahead])

    def windows(
        self,
        windows: Sequence[Window],
        *,
        ahead: int,
        queue: deque[tuple[Window, Pending]] | None = None,
        on_last_queries: Callable[[], None] = lambda: None,
    ) -> Iterator[list[Record] | WindowDone]:
        """Batches of records of every window in order, a `WindowDone` after each window.

        `ahead` windows are fetched ahead of the one being emitted (`queue` may hold the first
        ones, started early). `on_last_queries` is called once this spec's last queries are
        out, so that the next stream can start its own.
        """
        queue = deque() if queue is None else queue
        waiting = iter(windows[len(queue) :])
        self.stats.windows_total = len(windows)
        told = False
        try:
            while True:
                while len(queue) < ahead and (window := next(waiting, None)) is not None:
                    queue.append((window, self.fetch(window)))
                if len(queue) < ahead and not told:
                    told = True
                    on_last_queries()
                if not queue:
                    return
                window, pending = queue.popleft()
                began, rows_before = time.monotonic(), self.stats.rows
                yield from self.window(window, pending)
                yield WindowDone(window, self.stats.rows - rows_before, time.monotonic() - began)
        finally:
            for _window, pending in queue:
                pending.cancel()

    def window(self, window: Window, pending: Pending | None = None) -> Iterator[list[Record]]:
        """Every row of `window`, in order, exactly once, continuing past the row limit."""
        rest: Window | None = window
        while rest is not None:
            rest = yield from self._query(rest, pending)
            pending = None

    def _query(
        self, window: Window, pending: Pending | None
    ) -> Generator[list[Record], None, Window | None]:
        """Read `window` with one query, again from where a broken try stopped.

        Returns what is left of `window` when the query hit the row limit, else None.
        """
        current = window
        tries = self._tries(lambda: current)
        while True:
            page = _HeldBack(self.key)
            attempt = next(tries)
            with attempt:
                query = pending or self.fetch(current)
                pending = None
                try:
                    yield from self._released(query, page, current)
                except QueryTimeoutError as exc:
                    yield from self._split(page.rest_of(current), exc)
                    return None
                return (yield from self._after(current, page))
            resume = page.rest_of(current)
            self.logger.warning(
                "%s: window %s broke off after %d rows (%s); re-reading from %s",
                self.name,
                current.describe(self.tz),
                page.rows,
                attempt.error,
                resume.describe(self.tz),
            )
            current = resume

    def _released(self, query: Pending, page: _HeldBack, window: Window) -> Iterator[list[Record]]:
        try:
            for rows in query.rows():
                raise_if_stopped(self.stop)
                self._check_columns(rows)
                self._check_cache(rows, window)
                ready = page.add(self.builder.records(rows), table_rows(rows))
                if ready:
                    self.stats.rows += len(ready)
                    yield ready
                self.progress.reading(window)
        finally:
            query.cancel()

    def _check_columns(self, rows: list[t.Any]) -> None:
        """Warn (once) when Looker cut the pivot columns at `column_limit`."""
        if self._told_columns or not (isinstance(rows, TableRows) and rows.columns_truncated):
            return
        self._told_columns = True
        self.logger.warning(
            "%s: Looker cut the pivot values at the column limit%s; records of the pivot "
            "values past it are missing. Raise 'column_limit' (Looker allows up to 200).",
            self.spec.label,
            f" ({self.spec.column_limit})" if self.spec.column_limit else "",
        )

    def _check_cache(self, rows: list[t.Any], window: Window | None) -> None:
        """Say at INFO when Looker reports that it answered from its cache (`from_cache`).

        Every query the tap sends asks for fresh results (`cache=false`); Looker may answer
        from its cache nonetheless (System Activity without Elite System Activity keeps one for
        12 hours). A `json_detail` result says so.
        """
        if isinstance(rows, TableRows) and rows.from_cache:
            where = f", window {window.describe(self.tz)}" if window else ""
            self.logger.info(
                "%s%s: Looker answered from its cache (from_cache: true) although the tap "
                "asked for fresh results",
                self.spec.label,
                where,
            )

    def _after(
        self, window: Window, page: _HeldBack
    ) -> Generator[list[Record], None, Window | None]:
        """The held-back rows when the query was complete; else what is left to read."""
        if self.limit == UNLIMITED or page.rows < self.limit or page.held_value is None:
            self.stats.rows += len(page.held)
            yield page.held
            return None
        self.stats.splits += 1
        crowded = page.resume_at
        if page.emitted:
            self.logger.info(
                "%s: window %s hit the row limit (%d); continuing from %s",
                self.name,
                window.describe(self.tz),
                self.limit,
                page.held_second,
            )
            return window.from_(crowded)
        # More than `limit` rows share one second: read that second without a limit.
        self.logger.info(
            "%s: more than %d rows at %s; reading that second without a limit",
            self.name,
            self.limit,
            page.held_second,
        )
        second = Window(crowded, crowded + ONE_SECOND)
        yield from self._second(second)
        return Window(second.end, window.end) if second.end < window.end else None

    def _split(self, rest: Window, exc: QueryTimeoutError) -> Iterator[list[Record]]:
        """A window too slow for Looker as one query: read it as two halves, in order."""
        if rest.is_single_second:
            raise self._failure(rest, str(exc)) from exc
        self.stats.splits += 1
        middle = floor_second(rest.start + (rest.end - rest.start) / 2)
        self.logger.warning(
            "%s: %s; splitting window %s in two", self.name, exc, rest.describe(self.tz)
        )
        yield from self.window(Window(rest.start, middle))
        yield from self.window(Window(middle, rest.end))

    def _second(self, second: Window) -> Iterator[list[Record]]:
        """One crowded second without a limit, collected whole so a retry repeats nothing."""
        tries = self._tries(lambda: second)
        while True:
            with next(tries):
                query = self.fetch(second, UNLIMITED)
                records: list[Record] = []
                try:
                    for rows in query.rows():
                        records += self.builder.records(rows)
                finally:
                    query.cancel()
                self.stats.rows += len(records)
                yield records
                return

    # Full-table specs and manual backfills: one query

    def full(self) -> Iterator[list[Record]]:
        """Every row of the spec's one query; a rerun after a failure skips what was emitted."""
        spec = self.spec
        limit = spec.limit or UNLIMITED
        emitted = 0
        self.stats.windows_total = 1
        table = 0
        truncated = False
        tries = self._tries(lambda: None)
        while True:
            attempt = next(tries)
            with attempt:
                self.stats.queries += 1
                query = self._start(
                    spec.body(
                        limit=limit,
                        sorts=spec.sorts_by_datetime,
                        query_timezone=self.tz_name,
                        client_id=own_client_id(),
                    )
                )
                seen = 0
                table = 0
                try:
                    for rows in query.rows():
                        raise_if_stopped(self.stop)
                        self._check_columns(rows)
                        self._check_cache(rows, None)
                        table += table_rows(rows)
                        truncated = truncated or (isinstance(rows, TableRows) and rows.truncated)
                        records = self.builder.records(rows)
                        # After a rerun, skip the rows already emitted: same query, same order.
                        skip = max(0, min(len(records), emitted - seen))
                        seen += len(records)
                        if skip < len(records):
                            ready = records[skip:] if skip else records
                            emitted += len(ready)
                            self.stats.rows += len(ready)
                            yield ready
                        self.progress.reading(None)
                finally:
                    query.cancel()
                break
            self.logger.warning(
                "%s: query broke off (%s); running it again", self.name, attempt.error
            )
        self.stats.windows_done = 1
        if truncated or (limit != UNLIMITED and table >= limit):
            self.logger.warning(
                "%s: the query returned exactly its limit of %d rows%s; the result may be "
                "truncated. Raise 'limit' or set it to -1 for all rows.",
                self.spec.label,
                limit,
                " of Looker's pivoted table" if spec.pivots else "",
            )


def _second(value: str | None) -> str | None:
    """The whole second of an emitted datetime (`YYYY-MM-DDTHH:MM:SS`), for grouping rows."""
    return value[:19] if value else None
