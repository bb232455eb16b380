"""BATCH mode: the tap writing batch files to a local root, against the raw baseline.

Same emulator, same window, runs interleaved with the raw baseline (as in `throughput`); each
tap run writes into a fresh directory, and the rows in its files are counted afterwards (a run
that wrote fewer rows than the window holds is an error, not a measurement). The memory run is a
2,000,000-row window with `batch_size` 1,000,000 (Parquet, the format whose writer buffers most).
"""

from __future__ import annotations

import gzip
import json
import shutil
import statistics
import typing as t
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    PYTHON,
    TAP,
    WORK,
    Emulator,
    Measured,
    run_timed,
    synthetic_spec,
    tap_config,
    write_json,
)
from benchmarks.measures import _RAW_ROWS, check, mb, rate, raw_body, rows_reported
from benchmarks.report import Row

if t.TYPE_CHECKING:
    from benchmarks.report import Report

FORMATS = {"jsonl": {"format": "jsonl"}, "jsonl.gz": {"format": "jsonl", "compression": "gzip"}}
PARQUET = {"format": "parquet"}


def _config(base_url: str, root: Path, encoding: dict[str, str], batch_size: int) -> Path:
    batch = {
        "encoding": encoding,
        "storage": {"root": root.as_uri()},
        "batch_size": batch_size,
    }
    name = f"batch-{encoding['format']}-{encoding.get('compression', 'none')}-{batch_size}.json"
    return write_json(WORK / name, tap_config(base_url, [synthetic_spec()], batch_config=batch))


def _rows_in_files(stdout: Path) -> int:
    """Rows in the files the run announced in its BATCH messages."""
    total = 0
    for line in stdout.read_text().splitlines():
        message = json.loads(line)
        if message.get("type") != "BATCH":
            continue
        for url in message["manifest"]:
            path = Path(urlparse(url).path)
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq  # noqa: PLC0415

                total += pq.ParquetFile(path).metadata.num_rows
            else:
                data = path.read_bytes()
                if path.name.endswith(".gz"):
                    data = gzip.decompress(data)
                total += data.count(b"\n")
    return total


def _run_batch(argv: list[str], root: Path, logs: Path, name: str) -> tuple[Measured, int]:
    """One BATCH run into an empty `root`: its measure and the rows in its files."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    stdout = logs / f"{name}.stdout"
    m = run_timed(argv, stderr=logs / f"{name}.stderr", stdout=stdout)
    check(m, name)
    return m, _rows_in_files(stdout)


def compare(report: Report, repeat: int, *, quick: bool) -> None:
    rows = 200_000 if quick else 1_000_000
    logs = WORK / "logs" / "batch"
    logs.mkdir(parents=True, exist_ok=True)
    root = WORK / "batch-files"
    names = ["raw", *FORMATS, "parquet"]
    results: dict[str, list[Measured]] = {name: [] for name in names}
    with Emulator(rows) as emu:
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
            **{
                name: [TAP, "--config", str(_config(emu.base_url, root, enc, 100_000))]
                for name, enc in {**FORMATS, "parquet": PARQUET}.items()
            },
        }
        for i in range(repeat):
            for name in names:  # interleaved, so drift hits all alike
                if name == "raw":
                    m = run_timed(argv[name], stderr=logs / f"raw-{i}.stderr")
                    check(m, name)
                    got = rows_reported(m, _RAW_ROWS)
                else:
                    m, got = _run_batch(argv[name], root, logs, f"{name}-{i}")
                if got != rows:
                    raise RuntimeError(f"{name} wrote {got} rows, expected {rows}")
                results[name].append(m)
                report.run(
                    f"batch {name} run {i + 1}: {m.seconds:.2f} s, {rows / m.seconds:,.0f} "
                    f"rows/s, peak RSS {m.peak_rss_mb:.0f} MB"
                )

    def med_rate(name: str) -> float:
        return statistics.median(rows / m.seconds for m in results[name])

    def med_rss(name: str) -> float:
        return statistics.median(m.peak_rss_mb for m in results[name])

    raw = med_rate("raw")
    label = f"{rows:,} rows x 20 fields, 1 window, batch_size 100,000"
    report.rows.append(
        Row(
            f"raw baseline (same run as the BATCH rows), {rows:,} rows",
            rate(raw),
            mb(med_rss("raw")),
        )
    )
    for name in names[1:]:
        ratio = med_rate(name) / raw
        report.rows.append(
            Row(
                f"tap BATCH {name} -> local files, {label}",
                rate(med_rate(name)),
                mb(med_rss(name)),
                f"batch/raw {ratio:.2f}",
                ">= 0.90",
                ratio >= 0.90,
            )
        )
    memory(report, repeat, quick=quick)


def memory(report: Report, repeat: int, *, quick: bool) -> None:
    rows, batch_size = (400_000, 200_000) if quick else (2_000_000, 1_000_000)
    logs = WORK / "logs" / "batch"
    root = WORK / "batch-files"
    peaks = []
    with Emulator(rows) as emu:
        argv = [TAP, "--config", str(_config(emu.base_url, root, PARQUET, batch_size))]
        for i in range(repeat):
            m, got = _run_batch(argv, root, logs, f"memory-{i}")
            if got != rows:
                raise RuntimeError(f"BATCH parquet wrote {got} rows, expected {rows}")
            peaks.append(m.peak_rss_mb)
            report.run(
                f"batch memory {rows:,} rows, batch_size {batch_size:,}, run {i + 1}: "
                f"peak RSS {m.peak_rss_mb:.1f} MB, {m.seconds:.1f} s"
            )
    peak = statistics.median(peaks)
    report.rows.append(
        Row(
            f"tap BATCH parquet peak RSS, {rows:,}-row window, batch_size {batch_size:,}",
            mb(peak),
            mb(peak),
            "",
            "< 150 MB",
            peak < 150,
        )
    )
