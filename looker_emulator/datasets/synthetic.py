"""Model ``synthetic``: rows computed from their index, never stored, for any row count.

Row ``i`` (0-based) has ``synthetic.id = i + 1`` and
``synthetic.created_time = ANCHOR + floor(i * 7 / 10)`` seconds, so ``created_time`` is
non-decreasing, about 30 % of rows share their second with a neighbour, and a time window maps to an
index range without scanning. Rows come from a recursive CTE over that range: O(1) memory.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from looker_emulator.lookml import Explore, Model, View

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
ANCHOR_EPOCH = int(ANCHOR.timestamp())
STEP_NUM, STEP_DEN = 7, 10  # created_time advances 7 seconds every 10 rows


#: Twenty fields of mixed types (ints, floats, text with unicode/commas/quotes/newlines, yesno,
#: dates, datetimes, NULLs): what benchmarks and memory tests select.
WIDE_FIELDS = [
    f"synthetic.{name}"
    for name in (
        "id",
        "created_time",
        "created_date",
        "created_month",
        "created_hour_of_day",
        "shipped_time",
        "name",
        "category",
        "amount",
        "quantity",
        "score",
        "ratio",
        "big_number",
        "is_active",
        "is_flagged",
        "postal_code",
        "email",
        "code",
        "notes",
        "amount_tier",
    )
]


class SyntheticSource:
    """Generates the synthetic rows; ``rows`` is the current row count (mutable)."""

    def __init__(self, rows: int) -> None:
        """Serve ``rows`` rows."""
        self.rows = rows

    @staticmethod
    def created_epoch(i: int) -> int:
        """``created_time`` of row ``i`` as epoch seconds."""
        return ANCHOR_EPOCH + (i * STEP_NUM) // STEP_DEN

    @staticmethod
    def first_index_at(epoch: int) -> int:
        """The smallest index whose ``created_time`` is >= ``epoch``."""
        s = epoch - ANCHOR_EPOCH
        return 0 if s <= 0 else math.ceil(s * STEP_DEN / STEP_NUM)

    @staticmethod
    def _epoch(stamp: str) -> int:
        return int(datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp())

    @staticmethod
    def next_second(stamp: str) -> str:
        """``stamp`` plus one second."""
        e = SyntheticSource._epoch(stamp) + 1
        return datetime.fromtimestamp(e, UTC).strftime("%Y-%m-%d %H:%M:%S")

    def index_range(
        self, lo: str | None, hi: str | None, *, lo_strict: bool = False
    ) -> tuple[int, int]:
        """Half-open index range of rows with ``lo <= created_time < hi`` (UTC stamps)."""
        start = 0
        end = self.rows
        if lo is not None:
            start = self.first_index_at(self._epoch(lo) + (1 if lo_strict else 0))
        if hi is not None:
            end = min(end, self.first_index_at(self._epoch(hi)))
        return min(start, self.rows), max(min(start, self.rows), end)

    @staticmethod
    def with_clause(lo: int, hi: int, *, descending: bool = False) -> str:
        """The CTE ``synthetic_rows(i)`` producing indexes ``lo..hi-1`` in order."""
        if descending:
            return (
                f"WITH RECURSIVE synthetic_rows(i) AS (SELECT {hi - 1} WHERE {hi - 1} >= {lo} "
                f"UNION ALL SELECT i - 1 FROM synthetic_rows WHERE i - 1 >= {lo})"
            )
        return (
            f"WITH RECURSIVE synthetic_rows(i) AS (SELECT {lo} WHERE {lo} < {hi} "
            f"UNION ALL SELECT i + 1 FROM synthetic_rows WHERE i + 1 < {hi})"
        )


def build_model(source: SyntheticSource) -> Model:
    """The ``synthetic`` model: explore ``synthetic`` with ~20 fields of mixed types."""
    v = View("synthetic", "synthetic_rows", "id")
    i = v.col("i")
    created = f"datetime({ANCHOR_EPOCH} + ({i} * {STEP_NUM}) / {STEP_DEN}, 'unixepoch')"
    v.dimension("id", "number", f"({i} + 1)", primary_key=True, lookml_sql="${TABLE}.id")
    v.dimension_group(
        "created",
        None,
        ["raw", "time", "date", "week", "month", "hour", "hour_of_day"],
        raw_sql=created,
    )
    v.dimension_group(
        "shipped",
        None,
        ["raw", "time", "date"],
        raw_sql=(
            f"CASE WHEN {i} % 17 = 5 THEN NULL ELSE datetime({ANCHOR_EPOCH} + "
            f"({i} * {STEP_NUM}) / {STEP_DEN} + ({i} % 5) * 86400 + 3600, 'unixepoch') END"
        ),
    )
    v.dimension(
        "name",
        "string",
        f"CASE {i} % 7 WHEN 0 THEN 'naïve café ' || {i} WHEN 1 THEN '数据 ' || {i} "
        f"WHEN 2 THEN 'rocket 🚀 ' || {i} WHEN 3 THEN 'comma, \"quote\" ' || {i} "
        f"WHEN 4 THEN 'line' || char(10) || 'break ' || {i} WHEN 5 THEN 'tab' || char(9) || {i} "
        f"ELSE 'plain ' || {i} END",
    )
    v.dimension(
        "category",
        "string",
        f"CASE WHEN {i} % 13 = 7 THEN NULL ELSE CASE {i} % 5 WHEN 0 THEN 'alpha' "
        "WHEN 1 THEN 'beta' "
        f"WHEN 2 THEN 'gamma' WHEN 3 THEN 'delta' ELSE 'epsilon' END END",
    )
    v.dimension("amount", "number", f"((({i} * 7919) % 100000) / 100.0)")
    v.dimension("quantity", "number", f"CASE WHEN {i} % 11 = 0 THEN NULL ELSE ({i} * 31) % 97 END")
    v.dimension("score", "number", f"((({i} * 37) % 201) - 100)")
    v.dimension("ratio", "number", f"(({i} % 1000) / 999.0)")
    v.dimension("big_number", "number", f"({i} * 1000003)")
    v.dimension("is_active", "yesno", f"CASE WHEN {i} % 3 <> 0 THEN 'Yes' ELSE 'No' END")
    v.dimension("is_flagged", "yesno", f"CASE WHEN {i} % 10 = 9 THEN 'Yes' ELSE 'No' END")
    v.dimension("postal_code", "zipcode", f"printf('%05d', ({i} * 7) % 100000)")
    v.dimension("email", "string", f"'user' || ({i} % 5000) || '@example.com'")
    v.dimension(
        "code",
        "string",
        f"printf('%08x-%04x', ({i} * 2654435761) % 4294967296, {i} % 65536)",
    )
    v.dimension("notes", "string", f"CASE WHEN {i} % 5 = 0 THEN NULL ELSE 'note #' || {i} END")
    v.tier("amount_tier", f"((({i} * 7919) % 100000) / 100.0)", [0, 100, 250, 500, 750])
    v.measure("count", "count")
    v.measure("total_amount", "sum", f"((({i} * 7919) % 100000) / 100.0)")
    v.measure("average_amount", "average", f"((({i} * 7919) % 100000) / 100.0)")
    v.measure("max_created_time", "max", created, numeric=False)
    explore = Explore(
        "synthetic",
        v,
        description=(
            f"Generated rows; row count settable; created_time = {ANCHOR:%Y-%m-%d} + 0.7 s per row"
        ),
        source=source,
    )
    return Model("synthetic", {"synthetic": explore}, label="Synthetic")
