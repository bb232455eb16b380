"""Throughput, memory and latency-overlap measurements (the incumbent is in `incumbent.py`)."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import typing as t

import orjson

from benchmarks.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    DATETIME,
    PYTHON,
    SYNTHETIC_FIELDS,
    TAP,
    WINDOW_FILTER,
    WORK,
    Emulator,
    Measured,
    run_timed,
    synthetic_spec,
    tap_config,
    write_json,
)
from benchmarks.report import Row

if t.TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.report import Report

_DONE = re.compile(r": done: (\d+) rows")
_RAW_ROWS = re.compile(r"rows=(\d+)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rows_reported(measured: Measured, pattern: re.Pattern[str] = _DONE) -> int:
    """Rows the process reported on stderr (the tap's summary lines, summed over streams)."""
    assert measured.stderr_path is not None
    text = measured.stderr_path.read_text(errors="replace")
    return sum(int(m) for m in pattern.findall(text))


def check(measured: Measured, what: str) -> None:
    if measured.returncode != 0:
        tail = ""
        if measured.stderr_path is not None:
            tail = measured.stderr_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{what} exited {measured.returncode}: {tail}")


def raw_body(fields: list[str] | None = None) -> dict[str, t.Any]:
    """The body the tap sends for the one window (fields, window filter, sort, no limit)."""
    return {
        "model": "synthetic",
        "view": "synthetic",
        "fields": fields or SYNTHETIC_FIELDS,
        "filters": {DATETIME: WINDOW_FILTER},
        "sorts": [DATETIME],
        "limit": "-1",
        "query_timezone": "UTC",
    }


def mb(value: float) -> str:
    return f"{value:.0f} MB"


def rate(value: float) -> str:
    return f"{value:,.0f} rows/s"


# Throughput


def throughput(report: Report, repeat: int, *, quick: bool) -> None:
    rows = 200_000 if quick else 1_000_000
    logs = WORK / "logs" / "throughput"
    results: dict[str, list[Measured]] = {"raw": [], "tap": [], "sdk": []}
    with Emulator(rows) as emu:
        config = write_json(WORK / "throughput.json", tap_config(emu.base_url, [synthetic_spec()]))
        argv = {
            "raw": [
                PYTHON,
                "-m",
                "benchmarks.raw_baseline",
                emu.base_url,
                CLIENT_ID,
                CLIENT_SECRET,
                json.dumps(raw_body()),
            ],
            "tap": [TAP, "--config", str(config)],
            "sdk": [PYTHON, "-m", "benchmarks.sdk_default_tap", "--config", str(config)],
        }
        for i in range(repeat):
            for name in ("raw", "tap", "sdk"):  # interleaved, so drift hits all three alike
                m = run_timed(argv[name], stderr=logs / f"{name}-{i}.stderr")
                check(m, name)
                got = rows_reported(m, _RAW_ROWS if name == "raw" else _DONE)
                if got != rows:
                    raise RuntimeError(f"{name} emitted {got} rows, expected {rows}")
                results[name].append(m)
                line = (
                    f"throughput {name} run {i + 1}: {m.seconds:.2f} s, {rows / m.seconds:,.0f} "
                    f"rows/s, peak RSS {m.peak_rss_mb:.0f} MB"
                )
                report.run(line)

    def med_rate(name: str) -> float:
        return statistics.median(rows / m.seconds for m in results[name])

    def med_rss(name: str) -> float:
        return statistics.median(m.peak_rss_mb for m in results[name])

    raw, tap, sdk = med_rate("raw"), med_rate("tap"), med_rate("sdk")
    label = f"{rows:,} rows x 20 fields, 1 window"
    report.rows += [
        Row(f"raw baseline (requests+ijson+orjson), {label}", rate(raw), mb(med_rss("raw"))),
        Row(
            f"tap -> /dev/null, {label}",
            rate(tap),
            mb(med_rss("tap")),
            f"tap/raw {tap / raw:.2f}",
            ">= 0.40",
            tap / raw >= 0.40,
        ),
        Row(
            f"default singer-sdk stream (SimpleSingerWriter, RECURSIVE), {label}",
            rate(sdk),
            mb(med_rss("sdk")),
            f"tap/default {tap / sdk:.2f}",
            ">= 3",
            tap / sdk >= 3,
        ),
    ]


# Memory


def memory(report: Report, repeat: int, *, quick: bool) -> None:
    small, large = (100_000, 1_000_000) if quick else (200_000, 2_000_000)
    peaks: dict[int, list[float]] = {small: [], large: []}
    logs = WORK / "logs" / "memory"
    for rows in (small, large):
        with Emulator(rows) as emu:
            config = write_json(
                WORK / f"memory-{rows}.json", tap_config(emu.base_url, [synthetic_spec()])
            )
            for i in range(repeat):
                m = run_timed([TAP, "--config", str(config)], stderr=logs / f"{rows}-{i}.stderr")
                check(m, "tap")
                got = rows_reported(m)
                if got != rows:
                    raise RuntimeError(f"tap emitted {got} rows, expected {rows}")
                peaks[rows].append(m.peak_rss_mb)
                line = (
                    f"memory {rows:,} rows run {i + 1}: peak RSS {m.peak_rss_mb:.1f} MB, "
                    f"{m.seconds:.1f} s ({rows / m.seconds:,.0f} rows/s)"
                )
                report.run(line)
    low, high = statistics.median(peaks[small]), statistics.median(peaks[large])
    growth = high - low
    report.rows += [
        Row(f"tap peak RSS, {small:,}-row window", mb(low), mb(low)),
        Row(
            f"tap peak RSS, {large:,}-row window",
            mb(high),
            mb(high),
            "",
            "< 150 MB",
            high < 150,
        ),
        Row(
            f"tap RSS growth {small:,} -> {large:,} rows",
            f"{growth:+.1f} MB",
            "",
            "",
            "< 20 MB",
            growth < 20,
        ),
    ]


# Latency overlap

OVERLAP_END = "2026-01-01T20:00:00Z"  # 20 one-hour windows from 2026-01-01T00:00:00Z
OVERLAP_ROWS = 102_858  # rows with created_time before 20:00:00 (0.7 s per row)
OVERLAP_FIELDS = [
    SYNTHETIC_FIELDS[:10],
    [SYNTHETIC_FIELDS[0], SYNTHETIC_FIELDS[1], *SYNTHETIC_FIELDS[10:16]],
    [SYNTHETIC_FIELDS[0], SYNTHETIC_FIELDS[1], *SYNTHETIC_FIELDS[16:]],
]
REPLICATION_PROPERTY = "synthetic_created_time"


def check_overlap_output(path: Path, streams: list[str], expected_rows: int) -> None:
    """Each stream's records in order, complete, and its final bookmark = its last record."""
    last: dict[str, str] = {}
    counts = dict.fromkeys(streams, 0)
    state: dict[str, t.Any] = {}
    with path.open("rb") as fh:
        for line in fh:
            if not line.startswith(b'{"type"'):
                continue
            msg = orjson.loads(line)
            if msg["type"] == "RECORD":
                stream = msg["stream"]
                value = msg["record"][REPLICATION_PROPERTY]
                if stream in last and value < last[stream]:
                    raise RuntimeError(f"{stream}: record {value} after {last[stream]}")
                last[stream] = value
                counts[stream] += 1
            elif msg["type"] == "STATE":
                state = msg["value"]
    for stream in streams:
        if counts[stream] != expected_rows:
            raise RuntimeError(f"{stream}: {counts[stream]} records, expected {expected_rows}")
        bookmark = state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")
        if bookmark != last[stream]:
            raise RuntimeError(f"{stream}: final bookmark {bookmark} != last record {last[stream]}")


def overlap(report: Report, repeat: int, *, quick: bool) -> None:
    del quick  # the same 60 queries either way: latency, not rows, is what it measures
    streams = ["overlap_a", "overlap_b", "overlap_c"]
    specs = [
        synthetic_spec(name, fields=fields)
        for name, fields in zip(streams, OVERLAP_FIELDS, strict=True)
    ]
    env = {**_environ(), "BENCH_TAP_NOW": OVERLAP_END}
    logs = WORK / "logs" / "overlap"
    seconds: dict[int, list[float]] = {1: [], 4: [], 8: []}
    with Emulator(OVERLAP_ROWS + 1000, query_latency=0.3) as emu:
        for i in range(repeat):
            for concurrent in (1, 4, 8):
                config = write_json(
                    WORK / f"overlap-{concurrent}.json",
                    tap_config(
                        emu.base_url, specs, window_hours=1, max_concurrent_queries=concurrent
                    ),
                )
                out = WORK / "overlap-out.jsonl"
                m = run_timed(
                    [PYTHON, "-m", "benchmarks.fixed_clock_tap", "--config", str(config)],
                    stdout=out,
                    stderr=logs / f"c{concurrent}-{i}.stderr",
                    env=env,
                )
                check(m, "tap")
                check_overlap_output(out, streams, OVERLAP_ROWS)
                out.unlink()
                seconds[concurrent].append(m.seconds)
                line = (
                    f"overlap max_concurrent_queries={concurrent} run {i + 1}: {m.seconds:.2f} s "
                    f"(records in order, bookmarks = last records), peak RSS {m.peak_rss_mb:.0f} MB"
                )
                report.run(line)
    seq = statistics.median(seconds[1])
    label = f"3 streams x 20 windows, 300 ms/query, {OVERLAP_ROWS:,} rows per stream"
    report.rows.append(Row(f"sequential (max_concurrent_queries=1), {label}", f"{seq:.2f} s"))
    for concurrent in (4, 8):
        value = statistics.median(seconds[concurrent])
        default = " (default)" if concurrent == 4 else ""
        report.rows.append(
            Row(
                f"max_concurrent_queries={concurrent}{default}, same",
                f"{value:.2f} s",
                "",
                f"{value / seq:.2f} of sequential",
                "<= 0.35",
                value / seq <= 0.35,
            )
        )
    four, eight = statistics.median(seconds[4]), statistics.median(seconds[8])
    if abs(eight - four) < 0.1 * four:
        total = 3 * OVERLAP_ROWS
        report.notes.append(
            f"overlap: 4 and 8 queries in flight take about the same time ({four:.1f} s, "
            f"{eight:.1f} s), so Looker's latency is hidden; what is left is emitting {total:,} "
            f"records ({total / eight:,.0f} rows/s with start-up): the ratio follows the tap's "
            "throughput on this machine, not the fetch-ahead."
        )
    report.notes.append(
        "overlap runs `benchmarks/fixed_clock_tap.py`: the tap with its run start pinned to "
        f"{OVERLAP_END} (env BENCH_TAP_NOW), so 1-hour windows from 2026-01-01 all hold rows."
    )


def _environ() -> dict[str, str]:
    return dict(os.environ)
