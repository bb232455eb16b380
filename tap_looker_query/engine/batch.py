"""BATCH files: a stream's records written straight to jsonl(.gz) or Parquet files.

The stream hands over records that already went through property selection and stream maps
(the same function RECORD mode uses); this module only encodes them and puts the files where
`batch_config.storage.root` says (`file://`, `s3://`, `gs://`: any fsspec protocol whose package
is installed). A file is closed when it holds `batch_size` records, and its URL goes into one
BATCH message.

Memory stays flat in the batch size: jsonl is encoded and written as the records come, Parquet
is converted to Arrow per record list and written in row groups of `ROW_GROUP_ROWS` rows.

Parquet columns get their Arrow types from the stream's JSON schema (after the stream maps), so
every file of a stream has the same schema whatever its values: date-time is
`timestamp[us, tz=UTC]` (the instant, converted to UTC), date is `date32`, integer `int64`,
number `float64` (Looker's numbers are binary floats in its json results already), boolean
`bool`, everything else `string` (objects and arrays as JSON text). Every column is nullable.
"""

from __future__ import annotations

import gzip
import io
import os
import typing as t
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow as pa

Record = dict[str, t.Any]

#: Rows per Parquet row group: large enough for readers, small enough for flat memory.
ROW_GROUP_ROWS = 16_384
#: Records converted to Arrow in one go.
CONVERT_ROWS = 2_048
FORMATS = ("jsonl", "parquet")
COMPRESSIONS = (None, "none", "gzip")
#: The extra of each storage protocol (its fsspec implementation) and Parquet's.
EXTRAS = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "parquet": "parquet"}


class BatchSetupError(ValueError):
    """`batch_config` asks for something this tap cannot write; raised before any query runs."""


def _encode_other(value: t.Any) -> t.Any:  # noqa: ANN401 - whatever a stream map returned
    """What msgspec cannot encode natively (a map's `datetime`, `Decimal`): as the SDK does."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if isoformat is not None else str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_other, decimal_format="number")


def _as_text(value: t.Any) -> str | None:  # noqa: ANN401
    """A string column's value: text as it is, anything else as its JSON."""
    if value is None or type(value) is str:
        return value
    return _ENCODER.encode(value).decode()


@dataclass(frozen=True)
class BatchTarget:
    """Where and how a stream's batch files are written (`batch_config`)."""

    root: str
    prefix: str
    format: str
    gzip: bool
    batch_size: int
    #: fsspec storage options (`batch_config.storage.params`), e.g. an S3 endpoint.
    params: Mapping[str, t.Any]

    def check(self) -> None:
        """Name the problem in `batch_config` before any data moves.

        Raises:
            BatchSetupError: unknown format, compression on Parquet, a missing extra.
        """
        if self.format not in FORMATS:
            msg = (
                f"batch_config.encoding.format {self.format!r} is not supported; "
                f"use one of {', '.join(FORMATS)}"
            )
            raise BatchSetupError(msg)
        if self.format == "parquet" and self.gzip:
            msg = (
                "batch_config.encoding.compression 'gzip' applies to jsonl only "
                "(Parquet compresses its pages itself); remove it"
            )
            raise BatchSetupError(msg)
        if self.batch_size < 1:
            msg = f"batch_config.batch_size must be at least 1, not {self.batch_size}"
            raise BatchSetupError(msg)
        if self.format == "parquet":
            _need("pyarrow.parquet", "parquet", "Parquet batch files")
        protocol = self.protocol
        try:
            import fsspec  # noqa: PLC0415 - only BATCH runs need it

            fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            extra = EXTRAS.get(protocol)
            hint = f"install tap-looker-query[{extra}]" if extra else "install its fsspec package"
            msg = f"batch_config.storage.root {self.root!r}: cannot write there ({exc}); {hint}"
            raise BatchSetupError(msg) from None

    @property
    def suffix(self) -> str:
        """The batch files' name ending."""
        return ".parquet" if self.format == "parquet" else ".jsonl.gz" if self.gzip else ".jsonl"

    @property
    def protocol(self) -> str:
        """The root's fsspec protocol (`file` for a bare path)."""
        return self.root.split("://", 1)[0] if "://" in self.root else "file"

    def url(self, name: str) -> str:
        """The full URL of the file `name` under the root and prefix (local: absolute)."""
        root = self.root
        if self.protocol == "file":
            path = Path(root.removeprefix("file://") or ".").resolve()
            root = path.as_uri()
        return f"{root.rstrip('/')}/{self.prefix}{name}"


def _need(module: str, extra: str, what: str) -> None:
    try:
        __import__(module)
    except ImportError:
        msg = f"{what} need pyarrow: install tap-looker-query[{extra}]"
        raise BatchSetupError(msg) from None


def arrow_schema(schema: Mapping[str, t.Any]) -> pa.Schema:
    """The Arrow schema of a stream's Parquet files, from its JSON schema (module docstring)."""
    import pyarrow as pa  # noqa: PLC0415 - an optional extra

    return pa.schema(
        [
            pa.field(name, _arrow_type(prop), nullable=True)
            for name, prop in schema.get("properties", {}).items()
        ]
    )


def _arrow_type(prop: Mapping[str, t.Any]) -> pa.DataType:
    import pyarrow as pa  # noqa: PLC0415

    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    non_null = [name for name in types if name != "null"]
    if len(non_null) != 1:
        return pa.string()
    kind = non_null[0]
    if kind == "string":
        return {"date-time": pa.timestamp("us", tz="UTC"), "date": pa.date32()}.get(
            prop.get("format", ""), pa.string()
        )
    return {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}.get(
        kind, pa.string()
    )


class _Jsonl:
    """One jsonl(.gz) file being written."""

    def __init__(self, raw: t.BinaryIO, *, compress: bool) -> None:
        self._raw = raw
        self._out: t.BinaryIO = (
            t.cast("t.BinaryIO", gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1))
            if compress
            else raw
        )

    def write(self, records: Sequence[Record]) -> None:
        self._out.write(_ENCODER.encode_lines(records))

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


def _system_allocator(pa: t.Any) -> None:  # noqa: ANN401 - the pyarrow module
    """Arrow allocates from malloc unless the user chose a pool (ARROW_DEFAULT_MEMORY_POOL).

    Arrow's default pool (jemalloc or mimalloc) keeps what each row group freed: measured, a
    300,000-row Parquet run peaked at 141 MB with it and 122 MB with malloc. The tap is its own
    process, so the process-wide default is its to set.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())


class _Parquet:
    """One Parquet file being written, a row group at a time."""

    def __init__(self, raw: t.BinaryIO, schema: pa.Schema) -> None:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        _system_allocator(pa)
        self._pa = pa
        self._raw = raw
        self._schema = schema
        self._writer = pq.ParquetWriter(raw, schema, compression="snappy")
        self._held: list[pa.RecordBatch] = []
        self._rows = 0
        # Columns Arrow cannot build from their JSON values directly: parsed from text.
        self._text = {
            field.name
            for field in schema
            if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type)
        }
        self._json = {field.name for field in schema if pa.types.is_string(field.type)}
        import pyarrow.json as pj  # noqa: PLC0415

        self._json_reader = pj
        # The JSON reader reads date-times and dates as text: the cast then parses any offset.
        text_schema = pa.schema(
            [
                pa.field(field.name, pa.string()) if field.name in self._text else field
                for field in schema
            ]
        )
        self._parse = pj.ParseOptions(
            explicit_schema=text_schema, unexpected_field_behavior="ignore"
        )

    def write(self, records: Sequence[Record]) -> None:
        """Convert `records` to Arrow now (compact), write a row group when enough are held.

        The records go through Arrow's C++ JSON reader (faster than building columns from
        Python values), `CONVERT_ROWS` at a time (the conversion's own peak grows with it); a
        slice it refuses (a stream map's object in a string column) takes the Python route.
        """
        for start in range(0, len(records), CONVERT_ROWS):
            self._convert(records[start : start + CONVERT_ROWS])
            if self._rows >= ROW_GROUP_ROWS:
                self._flush()

    def _convert(self, records: Sequence[Record]) -> None:
        pa = self._pa
        try:
            table = self._json_reader.read_json(
                io.BytesIO(_ENCODER.encode_lines(records)), parse_options=self._parse
            )
            columns = [
                table.column(field.name).cast(field.type)
                if field.name in self._text
                else table.column(field.name)
                for field in self._schema
            ]
            self._held.extend(pa.Table.from_arrays(columns, schema=self._schema).to_batches())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            self._held.append(self._from_values(records))
        self._rows += len(records)

    def _from_values(self, records: Sequence[Record]) -> pa.RecordBatch:
        pa = self._pa
        columns = []
        for field in self._schema:
            values = [record.get(field.name) for record in records]
            if field.name in self._text:
                column = pa.array(values, pa.string()).cast(field.type)
            elif field.name in self._json:
                texts = [_as_text(value) for value in values]
                column = pa.array(texts, pa.string())
            else:
                column = pa.array(values, field.type)
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=self._schema)

    def _flush(self) -> None:
        if self._held:
            table = self._pa.Table.from_batches(self._held, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(self._rows, 1))
        self._held = []
        self._rows = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._raw.close()


class BatchWriter:
    """A stream's batch files: records in, the URL of each full file out.

    `room` is how many more records the current file takes; `add` never takes more. The caller
    closes a file with `finish` when `room` is 0 and at the end (`finish` returns None when the
    file would be empty: no empty files are written).
    """

    def __init__(self, target: BatchTarget, stream: str, schema: Mapping[str, t.Any]) -> None:
        """Files for `stream`, whose records (after the stream maps) follow `schema`."""
        self.target = target
        self._run = f"{stream}-{uuid.uuid4()}"
        self._schema = arrow_schema(schema) if target.format == "parquet" else None
        self._count = 0
        self._file: _Jsonl | _Parquet | None = None
        self._url = ""
        self._rows = 0
        self.files: list[str] = []

    @property
    def room(self) -> int:
        """Records the current file still takes."""
        return self.target.batch_size - self._rows

    def add(self, records: Sequence[Record]) -> None:
        """Write `records` (at most `room`) into the current file, opening it if needed."""
        if not records:
            return
        if self._file is None:
            self._file = self._open()
        self._file.write(records)
        self._rows += len(records)

    def finish(self) -> str | None:
        """Close the current file; its URL, or None when no record went into it."""
        if self._file is None:
            return None
        self._file.close()
        self._file = None
        self._rows = 0
        self.files.append(self._url)
        return self._url

    def abandon(self) -> None:
        """Close an unfinished file without reporting it (the stream failed or stopped)."""
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except Exception:  # noqa: BLE001 - already failing; the file is never announced
                return

    def _open(self) -> _Jsonl | _Parquet:
        import fsspec  # noqa: PLC0415

        self._count += 1
        self._url = self.target.url(f"{self._run}-{self._count}{self.target.suffix}")
        options = dict(self.target.params)
        if self.target.protocol == "file":
            options.setdefault("auto_mkdir", True)
        raw = t.cast("t.BinaryIO", fsspec.open(self._url, "wb", **options).open())
        if self._schema is not None:
            return _Parquet(raw, self._schema)
        return _Jsonl(raw, compress=self.target.gzip)
