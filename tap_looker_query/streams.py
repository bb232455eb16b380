"""`QueryStream`: one Singer stream per query spec; windows -> Looker rows -> records, bookmarks.

Incremental specs walk half-open windows from the bookmark (inclusive) to the moment the run
started. Rows come back sorted by the datetime field, so the stream is resumable, and a window
that returns `limit` rows continues from its last second, or re-reads a single crowded second
without a limit, until every row has arrived. Rows of the newest second in a batch are held
back until the next second starts: a cut-off body or a truncated batch then resumes at that
second without losing or repeating a row.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import time
import typing as t
from collections import deque
from dataclasses import dataclass

import requests
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_looker_query.client import LookerError, QueryBody, QueryTaskError, QueryTimeoutError
from tap_looker_query.presets import CLIENT_ID_PREFIX, HISTORY_RETENTION_DAYS
from tap_looker_query.results import (
    LookerQueryError,
    ResultError,
    iter_csv_batches,
    iter_json_batches,
)
from tap_looker_query.schema import (
    Kind,
    RecordBuilder,
    ValueMismatchError,
    timezone,
)
from tap_looker_query.specs import LOOKER_DEFAULT_LIMIT, UNLIMITED
from tap_looker_query.spool import Spool
from tap_looker_query.windows import ONE_SECOND, Window, floor_second, plan_windows

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from singer_sdk.helpers.types import Context

    from tap_looker_query.specs import QuerySpec
    from tap_looker_query.tap import TapLookerQuery

if t.TYPE_CHECKING:
    from typing_extensions import override
else:
    try:
        from typing import override
    except ImportError:  # Python < 3.12
        from typing_extensions import override

#: Progress lines at most this often while a long window streams.
PROGRESS_INTERVAL = 30.0


class WindowFailedError(Exception):
    """A window could not be read completely; the stream stops before it."""


#: What reading a query's result can raise; `QueryStream._retry_or_fail` sorts them.
_WINDOW_ERRORS = (
    ValueMismatchError,
    ResultError,
    LookerError,
    requests.RequestException,
    OSError,
)


def kind_from_schema(prop: Mapping[str, t.Any]) -> Kind:
    """The value family a property's JSON Schema asks for (the catalog may override ours)."""
    types = prop.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    non_null = [name for name in types if name != "null"]
    primary = non_null[0] if non_null else "string"
    if primary == "string":
        return {"date-time": Kind.DATETIME, "date": Kind.DATE}.get(
            prop.get("format", ""), Kind.STRING
        )
    return {"integer": Kind.INTEGER, "number": Kind.NUMBER, "boolean": Kind.BOOLEAN}.get(
        primary, Kind.STRING
    )


@dataclass
class StreamStats:
    """Counters for the progress lines and the final summary."""

    rows: int = 0
    windows_done: int = 0
    windows_total: int = 0
    queries: int = 0
    splits: int = 0
    retries: int = 0
    started: float = 0.0


class _Fetch:
    """One query run downloading in the background into a spool."""

    def __init__(self, stream: QueryStream, body: QueryBody) -> None:
        self.body = body
        self.spool = Spool()
        stream.tap.fetch_pool.submit(self._download, stream)

    def _download(self, stream: QueryStream) -> None:
        try:
            for chunk in stream.tap.client.stream_run(self.body, stream.spec.result_format):
                if self.spool.cancelled:
                    return
                self.spool.write_chunk(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self.spool.fail(exc)
        else:
            self.spool.finish()

    def cancel(self) -> None:
        self.spool.close()


class QueryStream(Stream):
    """The rows of one configured Looker query."""

    # Records are exact JSON types already (see `_converter`); the SDK's generic
    # conformance would only cost time (about half of its per-record work).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapLookerQuery, *, spec: QuerySpec, schema: dict[str, t.Any]) -> None:
        """Build the stream for `spec` with its discovered (or catalog) schema."""
        self.spec = spec
        self.tap = tap
        super().__init__(tap, schema=schema, name=spec.name)
        self.primary_keys = spec.key_properties
        self.replication_key = spec.replication_property
        if spec.is_manual_backfill:
            # Its rows may be older than the bookmark: no STATE until `_clamp_bookmark` ran.
            self.STATE_MSG_FREQUENCY = 2**62
        self.stats = StreamStats()
        self._warm: tuple[list[Window], deque[tuple[Window, _Fetch]]] | None = None
        self._record_builder: RecordBuilder | None = None
        self._tz = timezone(tap.config.get("query_timezone") or "UTC")
        self._tz_name = tap.config.get("query_timezone") or "UTC"

    # Replication declarations

    @property
    @override
    def is_sorted(self) -> bool:
        """Rows come back sorted by the datetime field, so progress is resumable."""
        return self.replication_key is not None

    @property
    @override
    def check_sorted(self) -> bool:
        """Check order when bookmarks compare correctly as text (fixed UTC offset).

        In a zone with daylight saving, Looker's naive local times repeat in the autumn hour,
        so a correct order can look unsorted; a manual backfill may read rows older than the
        bookmark, which `_clamp_bookmark` then keeps from moving it backwards.
        """
        fixed_offset = self._tz.utcoffset(None) is not None
        return fixed_offset and not self.spec.is_manual_backfill

    # Records

    def _builder(self) -> RecordBuilder:
        """Looker rows (keyed by field name) -> records of exact JSON types, per the schema.

        One per stream (its converters are generated code, ~1 ms to build).
        """
        if self._record_builder is None:
            properties = self.schema.get("properties", {})
            plan = [
                (name, prop, kind_from_schema(properties[prop]))
                for name, prop in self.tap.field_properties(self.spec)
                if prop in properties
            ]
            self._record_builder = RecordBuilder(plan, self._tz)
        return self._record_builder

    def _batches(self, fetch: _Fetch, builder: RecordBuilder) -> Iterator[list[t.Any]]:
        if self.spec.result_format == "csv":
            return iter_csv_batches(fetch.spool, self.spec.fields)  # type: ignore[arg-type]
        return iter_json_batches(fetch.spool, builder.decode)  # type: ignore[arg-type]

    def _body(self, filters: Mapping[str, str], limit: int, sorts: tuple[str, ...]) -> QueryBody:
        spec = self.spec
        return QueryBody(
            model=spec.model,
            view=spec.explore,
            fields=spec.fields,
            filters=dict(filters),
            sorts=sorts,
            limit=limit,
            query_timezone=self._tz_name,
            filter_expression=spec.filter_expression,
            client_id=own_client_id(),
        )

    def _window_body(self, window: Window, limit: int) -> QueryBody:
        spec = self.spec
        field = t.cast("str", spec.datetime_field)
        filters = {**spec.filters, field: window.filter_expression(self._tz)}
        return self._body(filters, limit, self._sorted_by_datetime())

    def _sorted_by_datetime(self) -> tuple[str, ...]:
        field = t.cast("str", self.spec.datetime_field)
        rest = tuple(s for s in self.spec.sorts if s.split()[0] != field)
        return (field, *rest)

    @property
    def _window_limit(self) -> int:
        return self.spec.limit or LOOKER_DEFAULT_LIMIT

    def _start(self, context: Context | None) -> dt.datetime:
        """Bookmark (inclusive), else `start_date`, else now minus `default_days`."""
        state = self.get_context_state(context)
        if state.get("replication_key") == self.replication_key and state.get(
            "replication_key_value"
        ):
            return _parse_instant(str(state["replication_key_value"]))
        start_date = self.config.get("start_date")
        start = (
            _parse_instant(str(start_date))
            if start_date
            else self.tap.run_started - dt.timedelta(days=self.spec.default_days)
        )
        age = (self.tap.run_started - start).days
        if (self.spec.model, self.spec.explore) == ("system__activity", "history") and (
            age > HISTORY_RETENTION_DAYS
        ):
            self.logger.warning(
                "%s: the start reaches back %d days, but Looker keeps System Activity History "
                "for %d days only; older rows are gone and cannot be read",
                self.name,
                age,
                HISTORY_RETENTION_DAYS,
            )
        return start

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Rows of the spec: windowed when incremental, one query otherwise.

        A failure stops this stream only: it is logged and recorded for the exit status, and
        the state stays at the last fully emitted second.
        """
        self.stats = StreamStats(started=time.monotonic(), queries=self.stats.queries)
        try:
            self._check_catalog_matches_spec()
            if self.spec.is_incremental and not self.spec.is_manual_backfill:
                yield from self._incremental(context)
            else:
                yield from self._single_query()
        except (WindowFailedError, LookerError) as exc:
            self.tap.record_failure(self.name, str(exc))
        finally:
            self._log_summary()

    def _check_catalog_matches_spec(self) -> None:
        """A Look or tile whose fields changed since discovery is reported, not reshaped."""
        wanted = [prop for _name, prop in self.tap.field_properties(self.spec)]
        known = list(self.schema.get("properties", {}))
        if set(wanted) == set(known):
            return
        added = sorted(set(wanted) - set(known))
        removed = sorted(set(known) - set(wanted))
        msg = (
            f"{self.spec.label}: its fields changed since the catalog was discovered "
            f"(new: {', '.join(added) or 'none'}; gone: {', '.join(removed) or 'none'}); run "
            "discovery again (Meltano: --refresh-catalog)"
        )
        raise WindowFailedError(msg)

    # Incremental windows

    @property
    def _ahead(self) -> int:
        """Windows fetched ahead of the one being emitted."""
        return max(1, int(self.config.get("max_concurrent_queries") or 4))

    def _plan(self, context: Context | None) -> list[Window]:
        start = self._start(context)
        hours = self.spec.window_hours or int(self.config.get("window_hours") or 24)
        windows = plan_windows(start, self.tap.run_started, dt.timedelta(hours=hours))
        if not windows:
            self.logger.info("%s: up to date (bookmark %s)", self.name, start.isoformat())
        else:
            self.logger.info(
                "%s: %d window(s) of %d h from %s to %s",
                self.name,
                len(windows),
                hours,
                windows[0].start.isoformat(),
                windows[-1].end.isoformat(),
            )
        return windows

    def warm_up(self) -> None:
        """Start fetching this stream's first windows while the stream before it still emits.

        The SDK syncs streams one after another; without this each stream's first queries
        would wait for the previous stream's last record.
        """
        if self._warm is not None or not self.selected:
            return
        if not self.spec.is_incremental or self.spec.is_manual_backfill:
            return
        windows = self._plan(None)
        self.logger.info(
            "%s: starting its first %d queries while the previous stream finishes",
            self.name,
            min(len(windows), self._ahead),
        )
        queue = deque(
            (window, self._fetch(self._window_body(window, self._window_limit)))
            for window in windows[: self._ahead]
        )
        self._warm = (windows, queue)

    def _incremental(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        if self._warm is not None and context is None:
            windows, queue = self._warm
            self._warm = None
        else:
            windows, queue = self._plan(context), deque()
        self.stats.windows_total = len(windows)
        ahead = self._ahead
        pending = iter(windows[len(queue) :])
        warmed_next = False
        try:
            while True:
                while len(queue) < ahead:
                    window = next(pending, None)
                    if window is None:
                        break
                    queue.append(
                        (window, self._fetch(self._window_body(window, self._window_limit)))
                    )
                if len(queue) < ahead and not warmed_next:
                    warmed_next = True  # this stream's last queries are out: start the next's
                    self.tap.warm_up_after(self)
                if not queue:
                    break
                window, fetch = queue.popleft()
                began, rows_before = time.monotonic(), self.stats.rows
                yield from self._emit_window(window, fetch)
                self.stats.windows_done += 1
                self._log_window(window, self.stats.rows - rows_before, time.monotonic() - began)
                # A STATE after each window: a crash repeats at most the window it interrupted.
                # The SDK has no public hook for this; it is the call it makes itself every
                # STATE_MSG_FREQUENCY records.
                self._write_state_message()
        finally:
            for _window, fetch in queue:
                fetch.cancel()

    def _fetch(self, body: QueryBody) -> _Fetch:
        self.stats.queries += 1
        return _Fetch(self, body)

    def _emit_window(  # noqa: C901, PLR0912, PLR0915
        self, window: Window, fetch: _Fetch
    ) -> Iterator[dict[str, t.Any]]:
        """Every row of `window`, in order, exactly once, continuing past the row limit."""
        builder = self._builder()
        key = t.cast("str", self.replication_key)
        current, limit = window, self._window_limit
        attempts = 0
        while True:
            held: list[dict[str, t.Any]] = []
            held_second: str | None = None
            batch_rows = emitted = 0
            try:
                try:
                    for rows in self._batches(fetch, builder):
                        records = builder.records(rows)
                        batch_rows += len(records)
                        # Rows come sorted by the datetime field: everything before the
                        # batch's last second is complete; that second's rows wait.
                        last_second = _second(records[-1][key])
                        cut = len(records) - 1
                        while cut >= 0 and _second(records[cut][key]) == last_second:
                            cut -= 1
                        if cut >= 0:
                            ready = [*held, *records[: cut + 1]]
                            held = records[cut + 1 :]
                        elif held_second == last_second:
                            ready = []
                            held.extend(records)
                        else:
                            ready, held = held, records
                        held_second = last_second
                        if ready:
                            emitted += len(ready)
                            yield from self._count(ready)
                        self._maybe_log_progress(current)
                finally:
                    fetch.cancel()
            except QueryTimeoutError as exc:
                rest = current.from_(_parse_instant(held_second)) if held_second else current
                if rest.is_single_second:
                    raise self._failure(rest, str(exc)) from exc
                # Too slow for Looker as one query: read it as two halves, in order.
                self.stats.splits += 1
                middle = floor_second(rest.start + (rest.end - rest.start) / 2)
                first = Window(rest.start, middle)
                self.logger.warning(
                    "%s: %s; splitting window %s in two", self.name, exc, rest.describe(self._tz)
                )
                yield from self._emit_window(first, self._fetch(self._window_body(first, limit)))
                current = Window(middle, rest.end)
                attempts = 0
                fetch = self._fetch(self._window_body(current, limit))
                continue
            except _WINDOW_ERRORS as exc:
                self._retry_or_fail(exc, current, attempts)
                attempts += 1
                resume = current.from_(_parse_instant(held_second)) if held_second else current
                self.logger.warning(
                    "%s: window %s broke off after %d rows (%s); re-reading from %s",
                    self.name,
                    current.describe(self._tz),
                    batch_rows,
                    exc,
                    resume.describe(self._tz),
                )
                current = resume
                fetch = self._fetch(self._window_body(current, limit))
                continue
            if limit != UNLIMITED and batch_rows >= limit and held_second is not None:
                self.stats.splits += 1
                crowded = floor_second(_parse_instant(held_second))
                if emitted == 0:
                    # More than `limit` rows share one second: read that second without a limit.
                    self.logger.info(
                        "%s: more than %d rows at %s; reading that second without a limit",
                        self.name,
                        limit,
                        held_second,
                    )
                    second = Window(crowded, crowded + ONE_SECOND)
                    yield from self._emit_window_unlimited(second)
                    if second.end >= current.end:
                        return
                    current = Window(second.end, current.end)
                else:
                    self.logger.info(
                        "%s: window %s hit the row limit (%d); continuing from %s",
                        self.name,
                        current.describe(self._tz),
                        limit,
                        held_second,
                    )
                    current = current.from_(crowded)
                attempts = 0
                fetch = self._fetch(self._window_body(current, limit))
                continue
            yield from self._count(held)
            return

    def _emit_window_unlimited(self, window: Window) -> Iterator[dict[str, t.Any]]:
        builder = self._builder()
        attempts = 0
        while True:
            fetch = self._fetch(self._window_body(window, UNLIMITED))
            records: list[dict[str, t.Any]] = []
            try:
                try:
                    # One second's rows: small enough to collect before emitting, so a retry
                    # never repeats any of them.
                    for rows in self._batches(fetch, builder):
                        records += builder.records(rows)
                finally:
                    fetch.cancel()
            except _WINDOW_ERRORS as exc:
                self._retry_or_fail(exc, window, attempts)
                attempts += 1
                continue
            yield from self._count(records)
            return

    def _count(self, records: list[dict[str, t.Any]]) -> Iterator[dict[str, t.Any]]:
        self.stats.rows += len(records)
        return iter(records)

    def _retry_or_fail(self, exc: Exception, window: Window | None, attempts: int) -> None:
        """Count a retry of `window` after `exc`, or raise the stream's failure.

        Worth another try: a cut-off, malformed or empty body, a dropped connection, a 5xx
        that outlasted the transport's own retries. Final: Looker's own error (looker_error,
        a failed or killed task), a 4xx, and values of the wrong type (the same query would
        return them again).
        """
        if isinstance(exc, ValueMismatchError):
            reason = f"Looker returned a value of the wrong type: {exc}"
            raise self._failure(window, reason) from exc
        final = isinstance(exc, (LookerQueryError, QueryTaskError, QueryTimeoutError)) or (
            isinstance(exc, LookerError) and exc.status is not None and exc.status < 500  # noqa: PLR2004
        )
        if final:
            raise self._failure(window, str(exc)) from exc
        if attempts >= self.tap.client.settings.max_retries:
            raise self._failure(window, f"{exc} (after {attempts} retries)") from exc
        self.stats.retries += 1

    def _failure(self, window: Window | None, reason: str) -> WindowFailedError:
        where = f"window {window.describe(self._tz)}" if window else "the query"
        return WindowFailedError(f"{self.spec.label}, {where}: {reason}")

    # Full-table specs and manual backfills: one query

    def _single_query(self) -> Iterator[dict[str, t.Any]]:
        """A full-table spec, or a manual backfill that never moves the bookmark back."""
        previous = self._previous_bookmark()
        try:
            yield from self._single_query_rows()
        finally:
            if self.spec.is_manual_backfill:
                self._clamp_bookmark(previous)

    def _single_query_rows(self) -> Iterator[dict[str, t.Any]]:
        spec = self.spec
        limit = spec.limit or UNLIMITED
        sorts = self._sorted_by_datetime() if spec.is_incremental else spec.sorts
        builder = self._builder()
        emitted = 0
        attempts = 0
        self.stats.windows_total = 1
        while True:
            fetch = self._fetch(self._body(spec.filters, limit, sorts))
            batch_rows = 0
            try:
                try:
                    for rows in self._batches(fetch, builder):
                        records = builder.records(rows)
                        # After a retry, skip the rows already emitted: same query, same order.
                        skip = max(0, min(len(records), emitted - batch_rows))
                        batch_rows += len(records)
                        emitted += len(records) - skip
                        yield from self._count(records[skip:] if skip else records)
                finally:
                    fetch.cancel()
            except _WINDOW_ERRORS as exc:
                self._retry_or_fail(exc, None, attempts)
                attempts += 1
                self.logger.warning("%s: query broke off (%s); running it again", self.name, exc)
                continue
            break
        self.stats.windows_done = 1
        if limit != UNLIMITED and emitted >= limit:
            self.logger.warning(
                "%s: the query returned exactly its limit of %d rows; the result may be "
                "truncated. Raise 'limit' or set it to -1 for all rows.",
                self.name,
                limit,
            )

    def _previous_bookmark(self) -> str | None:
        state = self.stream_state
        if state.get("replication_key") == self.replication_key:
            value = state.get("replication_key_value")
            return str(value) if value is not None else None
        return None

    def _clamp_bookmark(self, previous: str | None) -> None:
        """A manual backfill never moves the bookmark backwards."""
        if previous is None:
            return
        current = self.stream_state.get("replication_key_value")
        if current is None or _parse_instant(str(current)) < _parse_instant(previous):
            self.stream_state["replication_key"] = self.replication_key
            self.stream_state["replication_key_value"] = previous

    # Progress

    def _log_window(self, window: Window, rows: int, seconds: float) -> None:
        stats = self.stats
        left = stats.windows_total - stats.windows_done
        elapsed = time.monotonic() - stats.started
        eta = elapsed / stats.windows_done * left if stats.windows_done else 0.0
        self.logger.info(
            "%s: window %s: %d rows in %.2f s (%.0f rows/s); %d of %d windows done, ETA %.0f s",
            self.name,
            window.describe(self._tz),
            rows,
            seconds,
            rows / seconds if seconds > 0 else 0.0,
            stats.windows_done,
            stats.windows_total,
            eta,
        )

    _last_progress: float = 0.0

    def _maybe_log_progress(self, window: Window) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        elapsed = now - self.stats.started
        self.logger.info(
            "%s: %d rows so far (%.0f rows/s), in window %s; %d of %d windows done",
            self.name,
            self.stats.rows,
            self.stats.rows / elapsed if elapsed > 0 else 0.0,
            window.describe(self._tz),
            self.stats.windows_done,
            self.stats.windows_total,
        )

    def _log_summary(self) -> None:
        stats = self.stats
        self.logger.info(
            "%s: done: %d rows, %d of %d windows, %d queries, %d splits, %d retries, %.1f s",
            self.name,
            stats.rows,
            stats.windows_done,
            stats.windows_total,
            stats.queries,
            stats.splits,
            stats.retries,
            time.monotonic() - stats.started,
        )


def _second(value: str | None) -> str | None:
    """The whole second of an emitted datetime (`YYYY-MM-DDTHH:MM:SS`), for grouping rows."""
    return value[:19] if value else None


def own_client_id() -> str:
    """A fresh 22-character query client id that marks the query as the tap's own."""
    alphabet = string.ascii_letters + string.digits
    tail = "".join(secrets.choice(alphabet) for _ in range(22 - len(CLIENT_ID_PREFIX)))
    return CLIENT_ID_PREFIX + tail


def _parse_instant(value: str) -> dt.datetime:
    """An aware datetime from a bookmark or `start_date` (naive means UTC, as in the SDK)."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 19 and text[10] == " ":  # noqa: PLR2004
        text = f"{text[:10]}T{text[11:]}"
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
