"""`QueryStream`: the Singer SDK adapter for one spec; the engine reads, this emits.

The stream declares what the SDK needs (keys, replication key, sort order), plans its windows
from the bookmark, and turns the reader's `WindowDone` events into STATE messages. Its only
private SDK touchpoints are here: `_write_state_message()` after each window, and the bookmark
policy in `_increment_stream_state` (the bookmark only moves forward, compared as instants).
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import typing as t

from singer_sdk import Stream
from singer_sdk import singerlib as singer
from singer_sdk.exceptions import ConfigValidationError, InvalidStreamSortException
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_looker_query.engine.batch import BatchSetupError, BatchTarget, BatchWriter
from tap_looker_query.engine.merge import MergeReader, merge_reader
from tap_looker_query.engine.plan import Window, parse_instant, plan_windows, start_of
from tap_looker_query.engine.reader import WindowDone, WindowReader
from tap_looker_query.engine.records import RecordBuilder
from tap_looker_query.errors import StreamFailedError, TapLookerError
from tap_looker_query.progress import Progress
from tap_looker_query.schema import Kind, kind_from_schema, timezone
from tap_looker_query.specs.merge import MergedSpec, check_reproducible, expected_properties
from tap_looker_query.system_activity import HISTORY_RETENTION_DAYS, is_history

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections import deque
    from collections.abc import Generator, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_looker_query.engine.reader import Pending
    from tap_looker_query.run import Run
    from tap_looker_query.specs.model import QuerySpec


class QueryStream(Stream):
    """The rows of one configured Looker query."""

    # Records are exact JSON types already (see `engine.records`); the SDK's generic
    # conformance would only cost time (about half of its per-record work).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, *, run: Run, spec: QuerySpec, schema: dict[str, t.Any]) -> None:
        """Build the stream for `spec` with its discovered (or catalog) schema."""
        self.spec = spec
        self.run = run
        super().__init__(tap, schema=schema, name=spec.name)
        self.primary_keys = spec.key_properties
        self.replication_key = spec.replication_property
        #: Read once: `_increment_stream_state` runs for every record.
        self._backfill = spec.is_manual_backfill
        #: The spec's own query time zone (a saved query's), else the setting's.
        self.query_tz = self._zone(spec)
        self.progress = Progress(spec.name, self.logger, self.query_tz)
        self._warm: tuple[list[Window], deque[tuple[Window, Pending]]] | None = None
        self._reader: WindowReader | MergeReader | None = None
        #: Rows before this instant are re-read (lookback) and never move the bookmark.
        self._floor: dt.datetime | None = None
        #: Set when the SDK found rows out of order; the stream stops at the next batch.
        self._unsorted: StreamFailedError | None = None
        self.__deselected: list[str] | None = None

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
        so a correct order can look unsorted. Rows older than the bookmark (a lookback, a
        manual backfill) never reach the check (`_increment_stream_state`).
        """
        return self.query_tz.utcoffset(None) is not None

    # The engine

    @property
    def reader(self) -> WindowReader | MergeReader:
        """The window reader of this stream (its record converters are built once, ~1 ms)."""
        if self._reader is None:
            properties = self.schema.get("properties", {})
            plan = [
                (name, prop, kind_from_schema(properties[prop]))
                for name, prop in self.spec.properties
                if prop in properties
            ]
            self._reader = self._window_reader(self.spec, plan, self.progress)
            if isinstance(self.spec, MergedSpec):
                self._reader = merge_reader(self.spec, self._reader, properties, self._added_reader)
        return self._reader

    def _zone(self, spec: QuerySpec) -> dt.tzinfo:
        """The spec's own query time zone (a saved query's), else the `query_timezone` setting's."""
        return timezone(spec.query_timezone) if spec.query_timezone else self.run.settings.tz

    def _added_reader(self, spec: QuerySpec, plan: list[tuple[str, str, Kind]]) -> WindowReader:
        """A reader of an added query of a merged tile (its rows are counted on their own)."""
        progress = Progress(spec.name, self.logger, self._zone(spec))
        return self._window_reader(spec, plan, progress)

    def _window_reader(
        self, spec: QuerySpec, plan: list[tuple[str, str, Kind]], progress: Progress
    ) -> WindowReader:
        """A reader of `spec`'s queries whose rows become records of `plan`."""
        settings = self.run.settings
        tz = self._zone(spec)
        builder = RecordBuilder(plan, tz)
        return WindowReader(
            spec,
            start=self.run.prefetcher.starter(spec.run_format, builder),
            builder=builder,
            tz=tz,
            tz_name=spec.query_timezone or settings.query_timezone,
            max_retries=settings.max_retries,
            progress=progress,
            logger=self.logger,
            stop=self.run.stopping,
        )

    @override
    def get_records(self, context: Context | None) -> Iterator[dict[str, t.Any]]:
        """Rows of the spec (RECORD mode), with a STATE after each window."""
        for event in self._events(context):
            if type(event) is WindowDone:
                # A crash repeats at most the window it interrupted. The SDK has no public
                # hook for this; it is the call it makes itself every STATE_MSG_FREQUENCY records.
                self._write_state_message()
            else:
                yield from t.cast("list[dict[str, t.Any]]", event)

    def _events(self, context: Context | None) -> Iterator[list[dict[str, t.Any]] | WindowDone]:
        """Record lists, and `WindowDone` after each window: windowed when incremental.

        A failure stops this stream only: it is logged and recorded for the exit status, and
        the state stays at the last fully emitted second.
        """
        self.progress.restart()
        try:
            check_reproducible(self.spec)
            self._check_catalog_matches_spec()
            if self.spec.is_incremental and not self.spec.is_manual_backfill:
                yield from self._incremental(context)
            else:
                yield from self.reader.full()
        except TapLookerError as exc:
            self.run.record_failure(self.name, str(exc))
        except Exception as exc:  # anything else still stops this stream only
            self.logger.debug("%s: unexpected failure", self.name, exc_info=True)
            self.run.record_failure(self.name, f"{type(exc).__name__}: {exc}")
        finally:
            self.progress.summary()

    def _check_catalog_matches_spec(self) -> None:
        """A Look or tile whose fields changed since discovery is reported, not reshaped."""
        wanted = expected_properties(self.spec)
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
        raise StreamFailedError(msg)

    # Incremental windows

    def _bookmark(self, context: Context | None) -> dt.datetime | None:
        """The bookmark in the input state, as an instant.

        A bookmark of another datetime field (the spec's `metadata.datetime` changed) is
        dropped: the stream starts again from `start_date`, and the SDK does not compare the
        new field's values with the old one's.

        Raises:
            StreamFailedError: the state holds something that is not a datetime.
        """
        state = self.get_context_state(context)
        if state.get("replication_key") != self.replication_key:
            if state.pop("replication_key_value", None) is not None:
                self.logger.info(
                    "%s: the state's bookmark is for '%s', not '%s': starting from start_date",
                    self.name,
                    state.get("replication_key"),
                    self.replication_key,
                )
            state.pop("replication_key", None)
            return None
        value = state.get("replication_key_value")
        if value in (None, ""):
            return None
        try:
            return parse_instant(str(value))
        except ValueError:
            msg = (
                f"{self.spec.label}: the state's bookmark {value!r} is not a date-time; set it "
                "to an ISO 8601 value or clear it (meltano state clear <state id>)"
            )
            raise StreamFailedError(msg) from None

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """The later of bookmark and `start_date`, as instants (the SDK compares as text).

        A bookmark that is not a datetime is passed on unchanged: `get_records` then fails this
        stream with a message, instead of the SDK failing the whole run.
        """
        try:
            later = parse_instant(str(value)) >= parse_instant(str(start_date_value))
        except ValueError:
            return value
        return value if later else start_date_value

    @property
    def lookback(self) -> dt.timedelta:
        """What each run re-reads before the bookmark: the spec's own, else the setting."""
        minutes = self.spec.lookback_minutes
        if minutes is None:
            minutes = self.run.settings.lookback_minutes
        return dt.timedelta(minutes=minutes)

    def _plan(self, context: Context | None) -> list[Window]:
        """The windows from where this sync starts (`engine.plan.start_of`) to the run's start."""
        run, spec = self.run, self.spec
        bookmark = self._bookmark(context)
        if self.lookback and not spec.primary_keys:
            self.logger.warning(
                "%s: a lookback of %d minutes re-reads rows, but the spec has no "
                "metadata.primary_keys: the target cannot deduplicate the repeats by key",
                spec.label,
                self.lookback.total_seconds() // 60,
            )
        start = start_of(
            bookmark=bookmark,
            start_date=run.settings.start_date,
            default_days=spec.default_days,
            now=run.started,
            lookback=self.lookback,
        )
        self._floor = bookmark
        age = (run.started - start).days
        if is_history(spec) and age > HISTORY_RETENTION_DAYS:
            self.logger.warning(
                "%s: the start reaches back %d days, but Looker keeps System Activity History "
                "for %d days only; older rows are gone and cannot be read",
                self.name,
                age,
                HISTORY_RETENTION_DAYS,
            )
        if start > run.started:
            self.logger.warning(
                "%s: starts at %s, after this run began (%s): nothing is read until then; "
                "check start_date and the state's bookmark",
                self.name,
                start.isoformat(),
                run.started.isoformat(),
            )
        hours = spec.window_hours or run.settings.window_hours
        windows = plan_windows(start, run.started, dt.timedelta(hours=hours))
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

    def warm_up(self) -> bool:
        """Start fetching this stream's first windows while the stream before it still emits.

        The SDK syncs streams one after another; without this each stream's first queries
        would wait for the previous stream's last record. Returns False when the stream is
        not selected (the next one may warm up instead).
        """
        if not self.selected:
            return False
        if self._warm is not None or not self.spec.is_incremental or self.spec.is_manual_backfill:
            return True
        windows = self._plan(None)
        ahead = self.run.settings.max_concurrent_queries
        self.logger.info(
            "%s: starting its first %d queries while the previous stream finishes",
            self.name,
            min(len(windows), ahead),
        )
        self._warm = (windows, self.reader.warm(windows, ahead))
        return True

    def _incremental(
        self, context: Context | None
    ) -> Iterator[list[dict[str, t.Any]] | WindowDone]:
        queue = None
        if self._warm is not None and context is None:
            windows, queue = self._warm
            self._warm = None
        else:
            windows = self._plan(context)
        events = self.reader.windows(
            windows,
            ahead=self.run.settings.max_concurrent_queries,
            queue=queue,
            on_last_queries=lambda: self.run.warm_up_after(self.name),
        )
        for event in events:
            if type(event) is WindowDone:
                self.progress.window_done(event.window, event.rows, event.seconds)
            yield event
            if self._unsorted is not None:
                raise self._unsorted

    # What both modes emit: property selection, then the stream maps

    @property
    def _deselected(self) -> list[str]:
        """The properties the catalog deselects (read once: the walk costs per record)."""
        if self.__deselected is None:
            mask = self.mask
            self.__deselected = [
                prop for prop in self.schema.get("properties", {}) if not mask[("properties", prop)]
            ]
        return self.__deselected

    def mapped(self, record: dict[str, t.Any]) -> Iterator[tuple[str, dict[str, t.Any]]]:
        """`record` as each stream map emits it, with the stream it goes to.

        The one code path of RECORD and BATCH mode (`_generate_record_messages`, `get_batches`):
        deselected properties are dropped (in place, as the SDK does: the bookmark then reads
        the same record), then each map transforms or filters it (hashing, `__NULL__`, renames,
        `__filter__`, new properties). Type conformance is off here (`TYPE_CONFORMANCE_LEVEL`);
        a subclass that turns it on gets the SDK's, as in `Stream._generate_record_messages`.
        """
        for prop in self._deselected:
            record.pop(prop, None)
        if self.TYPE_CONFORMANCE_LEVEL is not TypeConformanceLevel.NONE:  # a subclass's choice
            record = conform_record_data_types(
                stream_name=self.name,
                record=record,
                schema=self.effective_schema,
                level=self.TYPE_CONFORMANCE_LEVEL,
                logger=self.logger,
            )
        for stream_map in self.stream_maps:
            out = stream_map.transform(record)
            if out is not None:
                yield stream_map.stream_alias, out

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> Generator[singer.RecordMessage, None, None]:
        """RECORD messages through `mapped`, as the SDK's own do (same fields, same order).

        The SDK method is private; it is overridden so that BATCH files and RECORD messages
        come from one function, and so that selection is a list of pops instead of a walk of
        the catalog mask per record.
        """
        for alias, out in self.mapped(record):
            yield singer.RecordMessage(
                stream=alias,
                record=out,
                version=self._stream_version,
                time_extracted=dt.datetime.now(dt.UTC),
            )

    # BATCH mode

    def batch_problem(self, batch_config: BatchConfig) -> str | None:
        """Why this stream cannot sync in BATCH mode with `batch_config`, or None."""
        if len(self.stream_maps) != 1:
            aliases = ", ".join(stream_map.stream_alias for stream_map in self.stream_maps)
            return (
                f"{self.name}: BATCH mode writes one set of files per stream, but stream maps "
                f"send this stream to {len(self.stream_maps)} streams ({aliases}); drop the "
                "extra maps (__source__ copies) or sync in RECORD mode (no batch_config)"
            )
        try:
            batch_target(batch_config)
        except BatchSetupError as exc:
            return str(exc)
        return None

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
        """Batch files written from the reader's records, through `mapped` like RECORD mode.

        Each file holds `batch_size` records; the SDK writes a STATE after each BATCH message,
        and the bookmark then is the last record in the files so far. A stop (SIGTERM) in the
        middle of a file puts the state back to the last file announced.
        """
        problem = self.batch_problem(batch_config)
        if problem is not None:  # `TapLookerQuery.check_batch_config` reports it before syncs
            raise ConfigValidationError(problem)
        target = batch_target(batch_config)
        stream_map = self.stream_maps[0]
        writer = BatchWriter(target, stream_map.stream_alias, stream_map.transformed_schema)
        encoding = batch_config.encoding
        mapped = self.mapped
        increment = self._increment_stream_state
        counter = self.get_record_counter()
        counter.with_context(context)
        announced = copy.deepcopy(self.get_context_state(context))
        try:
            with counter:
                for event in self._events(context):
                    if type(event) is WindowDone:
                        continue
                    records = t.cast("list[dict[str, t.Any]]", event)
                    out: list[dict[str, t.Any]] = []
                    room = writer.room
                    for record in records:
                        for _alias, mapped_record in mapped(record):
                            out.append(mapped_record)
                        increment(record, context=context)
                        if len(out) == room:
                            writer.add(out)
                            counter.increment(len(out))
                            out = []
                            yield encoding, [t.cast("str", writer.finish())]
                            announced = copy.deepcopy(self.get_context_state(context))
                            room = writer.room
                    writer.add(out)
                    counter.increment(len(out))
                url = writer.finish()
            if url is not None:
                yield encoding, [url]
        except BaseException:
            writer.abandon()
            state = self.get_context_state(context)
            state.clear()
            state.update(announced)
            raise

    # The bookmark

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        """Advance the bookmark to a record's datetime, only ever forwards.

        A manual backfill never moves it: its range need not join the bookmark, so a later
        range would skip the rows between. Rows older than the bookmark the run started from
        (the lookback) are re-emitted without touching it. Once a row reaches the bookmark, the
        stored value takes that row's form, so the SDK's text comparison from then on compares
        like with like (a state written in another time zone or offset still resumes).
        """
        if self._backfill:
            return
        if self._floor is not None:
            value = latest_record.get(self.replication_key or "")
            if value is None or parse_instant(str(value)) < self._floor:
                return
            self._floor = None
            state = self.get_context_state(context)
            if state.get("replication_key") == self.replication_key:
                state["replication_key_value"] = value
        try:
            super()._increment_stream_state(latest_record, context=context)
        except InvalidStreamSortException as exc:
            # Raised here it would end the whole run; the stream stops at its next batch.
            self._unsorted = StreamFailedError(
                f"{self.spec.label}: Looker returned rows out of order by "
                f"'{self.spec.datetime_field}' ({exc}); the bookmark stays at the last row in order"
            )


def batch_target(batch_config: BatchConfig) -> BatchTarget:
    """The engine's view of the SDK's `batch_config`, checked (`BatchSetupError`)."""
    encoding, storage = batch_config.encoding, batch_config.storage
    target = BatchTarget(
        root=storage.root,
        prefix=storage.prefix or "",
        format=str(getattr(encoding.format, "value", encoding.format)),
        gzip=encoding.compression == "gzip",
        batch_size=batch_config.batch_size,
        params=storage.params or {},
    )
    target.check()
    return target
