"""Merged results: the primary query's records, each matched to the added queries' records.

Looker documents merged results as "similar to a left join" onto the primary (first) query:
every primary row stays; an added query's row whose merge fields equal the primary row's
lands on it; a primary row with no match keeps nulls for that query's columns, and one with
several matches is repeated once per match (with several added queries, once per combination).
Values are compared after typing (a `null` matches nothing, as in SQL). The join is row by row,
so it runs on each batch of primary records as it arrives, incremental windows included.
"""

from __future__ import annotations

import typing as t

from tap_looker_query.engine.reader import WindowDone
from tap_looker_query.schema import kind_from_schema

if t.TYPE_CHECKING:
    import logging
    from collections import deque
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from tap_looker_query.engine.plan import Window
    from tap_looker_query.engine.reader import Pending, WindowReader
    from tap_looker_query.schema import Kind
    from tap_looker_query.specs.merge import MergedSpec, MergeSource
    from tap_looker_query.specs.model import QuerySpec

    Plan = list[tuple[str, str, Kind]]

Record = dict[str, t.Any]
#: Merge-field values -> the added query's columns (merged property names) of each match.
Index = dict[tuple[t.Any, ...], list[Record]]


def index(source: MergeSource, records: Sequence[Record]) -> Index:
    """An added query's records by the values of its merge fields, in their order."""
    keys = [own for own, _primary in source.match_properties]
    found: Index = {}
    for record in records:
        key = tuple(record[prop] for prop in keys)
        if None not in key:
            found.setdefault(key, []).append(
                {merged: record[own] for own, merged in source.columns}
            )
    return found


def join(batch: Sequence[Record], added: Sequence[tuple[MergeSource, Index]]) -> list[Record]:
    """The merged records of a batch of primary records."""
    merged: list[Record] = []
    for record in batch:
        rows = [record]
        for source, found in added:
            key = tuple(record[primary] for _own, primary in source.match_properties)
            matches = found.get(key) or [dict.fromkeys((m for _o, m in source.columns), None)]
            rows = [{**row, **match} for row in rows for match in matches]
        merged += rows
    return merged


class MergeReader:
    """Reads a merged tile: the primary's reader, with each added query's records joined on.

    It offers what a stream asks of a `WindowReader` (`full`, `windows`, `warm`). Added queries
    merged on the primary's datetime field are read window by window with the primary (same
    window on their own field); the others are read once, in full, when first needed.
    """

    def __init__(
        self,
        primary: WindowReader,
        added: Sequence[tuple[MergeSource, WindowReader]],
        merge_limit: int | None,
        logger: logging.Logger,
    ) -> None:
        """Join `added` (each source with its reader) onto `primary`'s records."""
        self.primary = primary
        self.added = list(added)
        self.merge_limit = merge_limit
        self.logger = logger
        self._full: dict[int, Index] = {}
        self._emitted = 0

    def _index(self, position: int, window: Window | None) -> Index:
        source, reader = self.added[position]
        if source.windowed and window is not None:
            return index(source, [r for batch in reader.window(window) for r in batch])
        if position not in self._full:
            self._full[position] = index(source, [r for batch in reader.full() for r in batch])
        return self._full[position]

    def _indexes(self, window: Window | None) -> list[tuple[MergeSource, Index]]:
        return [(self.added[i][0], self._index(i, window)) for i in range(len(self.added))]

    def _merged(self, batch: list[Record], added: list[tuple[MergeSource, Index]]) -> list[Record]:
        records = join(batch, added)
        # The stream's row counts are of emitted records, repeats included.
        self.primary.stats.rows += len(records) - len(batch)
        self._emitted += len(records)
        return records

    def _check_merge_limit(self) -> None:
        if self.merge_limit is not None and self._emitted > self.merge_limit:
            self.logger.warning(
                "%s: the merged results have %d rows, more than the merge query's limit of %d: "
                "Looker's tile shows only the first %d in its sort order; the tap emits them all",
                self.primary.spec.label,
                self._emitted,
                self.merge_limit,
                self.merge_limit,
            )

    def warm(self, windows: Sequence[Window], ahead: int) -> deque[tuple[Window, Pending]]:
        """Start the primary's first `ahead` windows now."""
        return self.primary.warm(windows, ahead)

    def full(self) -> Iterator[list[Record]]:
        """Every merged record of the tile's one run of each query."""
        added = self._indexes(None)
        for batch in self.primary.full():
            yield self._merged(batch, added)
        self._check_merge_limit()

    def windows(
        self,
        windows: Sequence[Window],
        *,
        ahead: int,
        queue: deque[tuple[Window, Pending]] | None = None,
        on_last_queries: Callable[[], None] = lambda: None,
    ) -> Iterator[list[Record] | WindowDone]:
        """The merged records of every window of the primary, a `WindowDone` after each."""
        done = 0
        added: list[tuple[MergeSource, Index]] | None = None
        events = self.primary.windows(
            windows, ahead=ahead, queue=queue, on_last_queries=on_last_queries
        )
        for event in events:
            if type(event) is WindowDone:
                done, added = done + 1, None
                yield event
                continue
            if added is None:
                added = self._indexes(windows[done])
            yield self._merged(t.cast("list[Record]", event), added)


def merge_reader(
    spec: MergedSpec,
    primary: WindowReader,
    properties: Mapping[str, t.Any],
    make: Callable[[QuerySpec, Plan], WindowReader],
) -> MergeReader:
    """The reader of a merged tile, `make` building a reader for each added query.

    An added query's columns are typed as the stream's schema types them; its merge fields as
    the primary's fields they match.
    """
    added = []
    for source in spec.sources:
        merged = dict(source.columns) | dict(source.match_properties)
        plan = [
            (name, prop, kind_from_schema(properties[merged[prop]]))
            for name, prop in source.spec.properties
            if merged.get(prop) in properties
        ]
        added.append((source, make(source.spec, plan)))
    return MergeReader(primary, added, spec.merge_limit, primary.logger)
