"""Merged-results tiles: what a merge query is to the tap, and the names of its properties.

Looker has no API route that runs a merge query (only `GET` and `POST /merge_queries`), so the
tap runs each source query and merges the results itself, as Looker documents it: every added
query is matched to the primary (first) query on its merge fields, like a left join onto the
primary's rows. A `MergedSpec` is the primary query's spec plus the added queries (`MergeSource`),
each with its own spec, its merge field pairs and the names of its properties in the merged
stream. What the tap cannot reproduce is a `refusal`: the stream fails with it, naming the tile.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_looker_query.errors import StreamFailedError
from tap_looker_query.schema import property_name
from tap_looker_query.specs.model import QuerySpec

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: Looker's merged results use at most this many rows of each source query (its docs).
MERGE_SOURCE_LIMIT = 5000


@dataclass(frozen=True)
class MergeSource:
    """An added query of a merged tile, and how its rows land on the primary's."""

    spec: QuerySpec
    #: (field of this query, field of the primary query) pairs its rows are matched on.
    pairs: tuple[tuple[str, str], ...]
    #: (property in this query's own records, property in the merged stream), merge fields excluded.
    columns: tuple[tuple[str, str], ...]
    #: Merged on the primary's datetime field: read window by window with the primary.
    windowed: bool = False

    @property
    def match_properties(self) -> tuple[tuple[str, str], ...]:
        """(property of this query's records, property of the primary's) for each merge field."""
        return tuple((property_name(own), property_name(primary)) for own, primary in self.pairs)


@dataclass(frozen=True)
class MergedSpec(QuerySpec):
    """A merged-results tile: the primary query's spec (its fields come first) and the rest."""

    merge_id: str = ""
    sources: tuple[MergeSource, ...] = ()
    #: Why the tap cannot reproduce this merge; the stream fails with it.
    refusal: str | None = None
    #: The merge query's own row limit (Looker shows that many merged rows), when it has one.
    merge_limit: int | None = None

    @property
    def merged_properties(self) -> list[str]:
        """Every property of the merged stream, in order: the primary's, then each added query's."""
        return [prop for _name, prop in self.properties] + [
            merged for source in self.sources for _own, merged in source.columns
        ]


def merged_columns(
    primary_properties: Sequence[str],
    added: Sequence[tuple[Sequence[tuple[str, str]], Iterable[str]]],
) -> list[tuple[tuple[str, str], ...]]:
    """The (own property, merged property) columns of each added query.

    `added` holds, for each added query in order, its (field, property) pairs (a spec's
    `properties`: LookML fields named `view_field`, custom fields and table calculations after
    their Looker name) and its merge fields (left out: the primary's merge fields carry their
    values). The primary's properties come first; a name already taken gets the suffix `_<n>`,
    n being the query's position among the merge's source queries (the primary is 1, the first
    added query 2), then `_<n>_2`, `_<n>_3`... if that is taken as well.
    """
    taken = set(primary_properties)
    result = []
    for position, (properties, merge_fields) in enumerate(added, start=2):
        skip = set(merge_fields)
        columns = []
        for name, own in properties:
            if name in skip:
                continue
            merged = own
            if merged in taken:
                merged, counter = f"{own}_{position}", 2
                while merged in taken:
                    merged, counter = f"{own}_{position}_{counter}", counter + 1
            taken.add(merged)
            columns.append((own, merged))
        result.append(tuple(columns))
    return result


def _is_set(value: object) -> bool:
    return value not in (None, "", "[]", [], {}, False)


def merge_refusals(merge: Mapping[str, t.Any]) -> list[str]:
    """What of a merge query (Looker's `MergeQuery`) the tap cannot reproduce."""
    reasons = []
    if _is_set(merge.get("dynamic_fields")):
        reasons.append(
            "it has custom fields or table calculations of its own (the merge's dynamic_fields), "
            "which Looker computes after merging and no API route returns"
        )
    if _is_set(merge.get("pivots")):
        reasons.append(f"it is pivoted on {', '.join(map(str, merge['pivots']))}")
    if _is_set(merge.get("column_limit")):
        reasons.append(f"it has a column_limit ({merge['column_limit']})")
    if not merge.get("source_queries"):
        reasons.append("it has no source queries")
    return reasons


def source_refusals(query: Mapping[str, t.Any], position: int) -> list[str]:
    """What of a source query (a `Query`) the tap cannot merge: pivots.

    A pivoted source query is a table with a column per pivot value, which Looker merges as
    such; the tap's long form has no such columns to merge. Custom fields and table
    calculations of a source query are computed by Looker with that query, as for any tile.
    """
    if _is_set(query.get("pivots")):
        return [f"source query {position} is pivoted ({', '.join(query['pivots'])})"]
    return []


def pair_refusals(
    pairs: Sequence[tuple[str, str]],
    own_fields: Sequence[str],
    primary_fields: Sequence[str],
    position: int,
) -> list[str]:
    """Merge fields that are not LookML fields among the fields of their queries.

    Merge fields are matched by their LookML names (a custom field or table calculation is no
    merge field the tap can match: Looker's merge UI lists dimensions).
    """
    if not pairs:
        return [f"source query {position} has no merge fields to match the primary query on"]
    reasons = []
    for own, primary in pairs:
        if own not in own_fields:
            reasons.append(
                f"source query {position} merges on '{own}', which is not among its LookML fields"
            )
        if primary not in primary_fields:
            reasons.append(
                f"source query {position} merges onto '{primary}', which is not among the "
                "primary query's LookML fields"
            )
    return reasons


def merge_limit(merge: Mapping[str, t.Any]) -> int | None:
    """The merge query's own row limit, when it sets a positive one."""
    text = str(merge.get("limit") or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def expected_properties(spec: QuerySpec) -> list[str]:
    """The properties a spec's records have: a merged tile's include its added queries'."""
    if isinstance(spec, MergedSpec):
        return spec.merged_properties
    return [prop for _name, prop in spec.properties]


def refusal_of(spec: QuerySpec) -> str | None:
    """Why the tap cannot reproduce a spec (a merged tile), None when it can."""
    return spec.refusal if isinstance(spec, MergedSpec) else None


def check_reproducible(spec: QuerySpec) -> None:
    """Fail the stream of a merged tile the tap cannot reproduce, with why.

    Raises:
        StreamFailedError: the spec's refusal, naming the tile.
    """
    refusal = refusal_of(spec)
    if refusal:
        raise StreamFailedError(refusal)
