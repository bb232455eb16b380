r"""Parse Looker result bodies row by row, from any readable byte stream.

Looker's `json` result is one array of flat objects keyed by field name; `csv` has a header of
field *labels* and one `\\n`-terminated line per row (Looker API 4.0, `run_inline_query`).
Neither says when it was cut short, and a database error arrives as HTTP 200 with
`[{"looker_error": "..."}]`, so everything that is not a complete, well-formed result raises
`ResultError` here instead of passing for data.
"""

from __future__ import annotations

import codecs
import csv
import io
import typing as t

import msgspec

from tap_looker_query.errors import ResultError, TruncatedResultError, query_error

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence


class Readable(t.Protocol):
    """A byte stream read in order: a response body, a spool, a file."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; empty at the end."""
        ...


_SNIPPET = 200


def snippet(data: bytes | str) -> str:
    """The start of a body, for error messages."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")


class _Peeked(io.RawIOBase):
    """A byte stream with its first bytes already read (to sniff the body), replayed first."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:  # noqa: ANN401 - memoryview/bytearray
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_head(stream: Readable, size: int = 512) -> bytes:
    """The first `size` bytes of a body (fewer at its end), to tell what it is."""
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


_READ_SIZE = 256 * 1024
_TRIES_FROM_END = 8
_DECODER = msgspec.json.Decoder()
_WHITESPACE = b" \t\r\n"
#: A row larger than this without a parse means the body is not a Looker json result.
_MAX_PENDING = 256 * 1024 * 1024


#: Decodes a JSON array of rows (bytes -> list), raising msgspec.DecodeError when it is not.
RowDecoder = t.Callable[[bytes], t.Any]


def _decode_rows(batch: bytes, decode: RowDecoder) -> list[t.Any] | None:
    """The rows of `batch` (complete row objects separated by commas), or None if incomplete."""
    try:
        rows = decode(b"[" + batch + b"]")
    except msgspec.DecodeError:
        return None
    return rows if isinstance(rows, list) else None


def _split_rows(pending: bytes, decode: RowDecoder = _DECODER.decode) -> tuple[list[t.Any], bytes]:
    """Decode the longest prefix of `pending` made of whole rows; return it and the rest.

    A row ends at a `}`. A `}` inside a string cannot end a valid prefix (its string would be
    unterminated), so trying the last few `}` from the end finds the real boundary.
    """
    pending = pending.lstrip(_WHITESPACE)
    if pending.startswith(b","):  # the separator after the previous batch's last row
        pending = pending[1:].lstrip(_WHITESPACE)
    candidates: list[int] = []
    end = len(pending)
    while len(candidates) < _TRIES_FROM_END:  # normally the last `}` is the boundary
        end = pending.rfind(b"}", 0, end)
        if end < 0:
            break
        candidates.append(end)
    if len(candidates) == _TRIES_FROM_END:  # strings full of `}`: also try from the start
        start = pending.find(b"}")
        while 0 <= start < candidates[-1]:
            candidates.append(start)
            start = pending.find(b"}", start + 1)
    for end in candidates:
        rows = _decode_rows(pending[: end + 1], decode)
        if rows is not None:
            rest = pending[end + 1 :].lstrip(_WHITESPACE)
            if rest.startswith(b","):
                rest = rest[1:].lstrip(_WHITESPACE)
            return rows, rest
    return [], pending


def _check_json_start(head: bytes, stream: Readable) -> None:
    """Refuse a body that cannot be a `json` result, before any row is read."""
    stripped = head.lstrip()
    if not stripped:
        msg = "Looker returned an empty body instead of a JSON result"
        raise ResultError(msg)
    if stripped.startswith(b"{"):
        text = head + stream.read(4096)
        msg = f"Looker returned a JSON object instead of rows: {snippet(text)}"
        raise ResultError(msg)
    if not stripped.startswith(b"["):
        msg = f"Looker returned a non-JSON body: {snippet(head)}"
        raise ResultError(msg)


def _check_rows(rows: list[t.Any], *, first: bool) -> None:
    """A batch must hold row objects, and the first row must not be Looker's error."""
    if first and isinstance(rows[0], dict) and "looker_error" in rows[0]:
        msg = f"Looker reported an error: {rows[0]['looker_error']}"
        raise query_error(msg)
    # Typed rows (Structs) were checked while decoding; anything else must be objects.
    if not isinstance(rows[0], msgspec.Struct) and not all(type(row) is dict for row in rows):
        bad = next(row for row in rows if type(row) is not dict)
        msg = f"Looker returned a row that is not an object: {snippet(repr(bad))}"
        raise ResultError(msg)


def _json_ended(pending: bytes, *, more: bool) -> bool:
    """True at the closing `]`; raises when the body ended early or holds no result."""
    if pending.startswith(b"]"):
        if pending[1:].strip(_WHITESPACE):
            msg = f"unexpected data after the JSON result: {snippet(pending[1:])}"
            raise ResultError(msg)
        return True
    if not more:
        complete = pending.rstrip(_WHITESPACE)
        if complete.endswith(b"]"):  # all there, yet not decodable: say why (NaN, bad UTF-8)
            try:
                _DECODER.decode(b"[" + complete)
            except msgspec.DecodeError as exc:
                if "truncated" not in str(exc):
                    msg = f"the JSON result is malformed ({exc}) near: {snippet(pending[:200])}"
                    raise ResultError(msg) from exc
        if pending and not complete.endswith((b"}", b",")):
            msg = f"the JSON result ended early: {snippet(pending[-200:])}"
        elif pending.strip(_WHITESPACE):
            msg = f"the JSON result is malformed or ended early near: {snippet(pending[:200])}"
        else:
            msg = "the JSON result ended early (no closing ']')"
        raise TruncatedResultError(msg)
    if len(pending) > _MAX_PENDING:
        msg = f"the JSON result is malformed near: {snippet(pending[:200])}"
        raise ResultError(msg)
    return False


def iter_json_batches(
    stream: Readable, decode: RowDecoder = _DECODER.decode
) -> Iterator[list[t.Any]]:
    """Rows of a `json` result in batches (one per read), decoded as the body arrives.

    Memory stays flat in result size: at most one read (256 KiB) plus a partial row is pending.
    Batches of whole rows are decoded with msgspec, several times faster than a token-by-token
    parser. Rows are dicts, or what `decode` makes of them (`RecordBuilder.decode` gives typed
    Structs when they fit; anything it could not type comes back as dicts).

    Raises:
        LookerQueryError: the body is Looker's `[{"looker_error": ...}]` (`QueryDroppedError`
            when it says Looker dropped the query from its queue).
        TruncatedResultError: the body ended before the closing `]`.
        ResultError: the body is empty, HTML, or not a JSON array of objects.
    """
    head = _read_head(stream)
    _check_json_start(head, stream)
    pending = head.lstrip(_WHITESPACE)[1:]  # the "[" (checked above)
    first = True
    more = True
    while more:
        chunk = stream.read(_READ_SIZE)
        more = bool(chunk)
        pending += chunk
        rows, pending = _split_rows(pending, decode)
        if rows:
            _check_rows(rows, first=first)
            first = False
            yield rows
        if _json_ended(pending, more=more):
            return


class _LineTracker:
    """Decodes UTF-8 incrementally and remembers whether the text ended with a newline."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.ends_with_newline = True
        self._pending = ""

    def read(self) -> str:
        chunk = self._stream.read(65536)
        text = self._decoder.decode(chunk, final=not chunk)
        if text:
            self.ends_with_newline = text.endswith("\n")
        return text

    def readline(self) -> str:
        while "\n" not in self._pending:
            text = self.read()
            if not text:
                line, self._pending = self._pending, ""
                return line
            self._pending += text
        line, _, self._pending = self._pending.partition("\n")
        return line + "\n"

    def __iter__(self) -> _LineTracker:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _check_csv_start(head: bytes) -> None:
    """Refuse a body that cannot be a `csv` result, before any row is read."""
    if not head.strip():
        msg = "Looker returned an empty body instead of a CSV result"
        raise ResultError(msg)
    stripped = head.lstrip()
    if stripped.startswith((b"[", b"{")) and b"looker_error" in head:
        msg = f"Looker reported an error: {snippet(head)}"
        raise query_error(msg)
    if stripped[:1] == b"<":
        msg = f"Looker returned an HTML page instead of CSV: {snippet(head)}"
        raise ResultError(msg)


def _check_csv_header(reader: Iterator[list[str]], width: int) -> None:
    header = next(reader, [])
    if len(header) != width:
        msg = (
            f"the CSV header has {len(header)} columns for {width} fields: "
            f"{snippet(','.join(header))}"
        )
        raise ResultError(msg)


def iter_csv_rows(stream: Readable, fields: Sequence[str]) -> Iterator[dict[str, t.Any]]:
    """Rows of a `csv` result keyed by field name: columns map to `fields` by position.

    Looker's csv header holds labels, not names, so only the column count can be checked.
    Every value is text; empty cells are None (the type conversion parses the rest).

    Raises:
        LookerQueryError: the body is a looker_error (`QueryDroppedError`: dropped unrun).
        TruncatedResultError: the last line has no newline (the body was cut off).
        ResultError: empty body, or the header does not have one column per field.
    """
    head = _read_head(stream)
    _check_csv_start(head)
    text = _LineTracker(_Peeked(head, stream))
    reader = csv.reader(text, strict=True)
    width = len(fields)
    names = tuple(fields)
    # Hold each row back until the next one starts: a row cut off mid-line can still have
    # the right number of columns, and only the final newline proves it complete.
    held: dict[str, t.Any] | None = None
    try:
        _check_csv_header(reader, width)
        for values in reader:
            if len(values) != width:
                if not text.ends_with_newline:
                    break
                msg = f"a CSV row has {len(values)} columns for {width} fields"
                raise ResultError(msg)
            if held is not None:
                yield held
            held = {
                name: (value if value != "" else None)
                for name, value in zip(names, values, strict=False)
            }
    except csv.Error as exc:
        msg = f"the CSV result is malformed or cut off ({exc})"
        raise TruncatedResultError(msg) from exc
    if not text.ends_with_newline:
        msg = "the CSV result was cut off (its last line has no newline)"
        raise TruncatedResultError(msg)
    if held is not None:
        yield held


def iter_csv_batches(
    stream: Readable, fields: Sequence[str], size: int = 2000
) -> Iterator[list[dict[str, t.Any]]]:
    """Rows of a `csv` result in batches of `size` (see `iter_csv_rows`)."""
    batch: list[dict[str, t.Any]] = []
    for row in iter_csv_rows(stream, fields):
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class TableRows(list[dict[str, t.Any]]):
    """Rows of a `json_detail` result in long form, with what Looker said of its table.

    `table_rows` counts rows of Looker's (pivoted) table, which its row limit counts: one of
    them gives a row per pivot value here.
    """

    def __init__(
        self,
        rows: list[dict[str, t.Any]],
        *,
        table_rows: int,
        truncated: bool = False,
        columns_truncated: bool = False,
        from_cache: bool = False,
    ) -> None:
        """Long-form `rows` of `table_rows` table rows.

        `from_cache` is set on the first batch of a result Looker says it answered from its
        cache.
        """
        super().__init__(rows)
        self.table_rows = table_rows
        self.truncated = truncated
        self.columns_truncated = columns_truncated
        self.from_cache = from_cache


def _names(group: object) -> list[str]:
    if not isinstance(group, list):
        return []
    return [str(item["name"]) for item in group if isinstance(item, dict) and "name" in item]


def _cell_value(cell: object, key: str | None) -> t.Any:  # noqa: ANN401 - a JSON value
    """A value of a json_detail row: `{"value": v}`, or `{pivot key: {"value": v}}`."""
    if not isinstance(cell, dict):
        return None
    if key is not None and isinstance(cell.get(key), dict):
        return cell[key].get("value")
    return cell.get("value")


class _DetailTable:
    """A decoded `json_detail` result: which cells hold values, and its pivot values."""

    def __init__(self, payload: t.Any) -> None:  # noqa: ANN401 - decoded JSON
        """Check `payload` and read its field and pivot metadata.

        Raises:
            LookerQueryError: the result carries Looker's `errors`.
            ResultError: it is not a json_detail result.
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            msg = f"Looker's answer is not a json_detail result: {snippet(repr(payload))}"
            raise ResultError(msg)
        errors = payload.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) else errors
            text = (
                (first.get("message_details") or first.get("message"))
                if isinstance(first, dict)
                else first
            )
            msg = f"Looker reported an error: {text}"
            raise query_error(msg)
        fields = payload.get("fields")
        fields = fields if isinstance(fields, dict) else {}
        self.measures = _names(fields.get("measures"))
        self.values = self.measures + _names(fields.get("table_calculations"))
        self.pivots = [
            pivot
            for pivot in payload.get("pivots") or []
            if isinstance(pivot, dict) and not pivot.get("is_total")
        ]
        self.data: list[t.Any] = payload["data"]
        self.truncated = payload.get("truncated") is True
        self.columns_truncated = str(payload.get("columns_truncated")).lower() == "true"
        self.from_cache = payload.get("from_cache") is True

    def records(self, row: object) -> Iterator[dict[str, t.Any]]:
        """The long-form records of one table row.

        Pivot fields take their values from the result's `pivots[].data`; measures and table
        calculations the row's cell for that pivot key (a value not split by pivot is the same
        on each). A pivot value whose measures are all NULL is an empty cell of Looker's table
        (no data for that row and value): it gives no record.

        Raises:
            ResultError: the row is not an object.
        """
        if not isinstance(row, dict):
            msg = f"Looker returned a row that is not an object: {snippet(repr(row))}"
            raise ResultError(msg)
        values = self.values
        base = {name: _cell_value(cell, None) for name, cell in row.items() if name not in values}
        if not self.pivots:
            yield {**base, **{name: _cell_value(row[name], None) for name in values if name in row}}
            return
        for pivot in self.pivots:
            key = str(pivot.get("key"))
            cells = {name: _cell_value(row[name], key) for name in values if name in row}
            if self.measures and all(cells.get(name) is None for name in self.measures):
                continue
            yield {**base, **dict(pivot.get("data") or {}), **cells}


def iter_json_detail_batches(stream: Readable, size: int = 2000) -> Iterator[TableRows]:
    """Rows of a `json_detail` result in long form, `size` table rows a batch.

    The body is one JSON object (its `data` array inside it), so it is decoded whole: a
    pivoted result is bounded by its row and column limits. Totals are not read.

    Raises:
        TruncatedResultError: the body ended early.
        LookerQueryError: the result carries Looker's `errors`.
        ResultError: the body is not a json_detail result.
    """
    body = b"".join(iter(lambda: stream.read(_READ_SIZE), b""))
    if not body.strip():
        msg = "Looker returned an empty body instead of a JSON result"
        raise ResultError(msg)
    try:
        payload = _DECODER.decode(body)
    except msgspec.DecodeError as exc:
        if "truncated" in str(exc):
            msg = f"the json_detail result ended early: {snippet(body[-200:])}"
            raise TruncatedResultError(msg) from exc
        msg = f"Looker returned a non-JSON body: {snippet(body)}"
        raise ResultError(msg) from exc
    table = _DetailTable(payload)
    for start in range(0, len(table.data), size):
        rows = table.data[start : start + size]
        yield TableRows(
            [record for row in rows for record in table.records(row)],
            table_rows=len(rows),
            truncated=table.truncated,
            columns_truncated=table.columns_truncated,
            from_cache=table.from_cache and start == 0,
        )


def table_rows(rows: Sequence[t.Any]) -> int:
    """How many rows of Looker's table a batch holds (a long-form batch knows; else one each)."""
    return rows.table_rows if isinstance(rows, TableRows) else len(rows)


class RowSource(t.Protocol):
    """What a result format needs to know of the stream: its fields and its row decoder."""

    @property
    def fields(self) -> Sequence[str]:
        """The Looker fields of the query, in order (csv columns map to them by position)."""
        ...

    def decode(self, data: bytes) -> list[t.Any]:
        """A JSON array of rows (typed where they fit)."""
        ...


#: Result format -> the parser of its body into batches of rows. A new format is one entry.
FORMATS: dict[str, Callable[[Readable, RowSource], Iterator[list[t.Any]]]] = {
    "json": lambda body, source: iter_json_batches(body, source.decode),
    "csv": lambda body, source: iter_csv_batches(body, source.fields),
    "json_detail": lambda body, _source: iter_json_detail_batches(body),
}
