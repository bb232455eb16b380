"""Looker -> PostgreSQL: `tap-looker-query | target-postgres`, RECORD mode against BATCH mode.

The tap against the emulator's synthetic explore (one window, 20 fields) piped into
meltanolabs-target-postgres 0.8.1 (the version meltano.yml pins, in its own venv under
`benchmarks/.work/` with pyarrow, which the target needs to read Parquet batches) loading a
scratch PostgreSQL cluster. The cluster is the e2e tests' (`tests.e2e.services.start_postgres`:
Debian's `postgresql` package, `initdb` in a temp folder, trust auth, fsync off). The target
gets meltano.yml's config for it (`load_method: upsert`, `add_record_metadata: true`).

The pipeline is the two processes joined by a pipe (`harness.run_pipeline`), not `meltano run`
as in tests/e2e/test_batch_postgres.py: Meltano's start-up and its relaying of the tap's stdout
would be timed too, and are the same in both modes. The wall time is from starting the tap to
the target's exit. Every run loads a schema of its own; afterwards the table must hold exactly
the window's rows, each primary key once (a run that loaded anything else is an error, not a
measurement). In BATCH mode the tap writes its files to a local root, which the target reads.
"""

from __future__ import annotations

import shutil
import statistics
import typing as t

from benchmarks.batch import FORMATS, PARQUET
from benchmarks.batch import _config as batch_config
from benchmarks.harness import (
    TAP,
    WORK,
    Emulator,
    Measured,
    run_pipeline,
    synthetic_spec,
    write_json,
)
from benchmarks.harness import tap_config as make_tap_config
from benchmarks.incumbent import ensure_venv
from benchmarks.measures import check, mb, rate
from benchmarks.report import Row
from tests.e2e.services import start_postgres

if t.TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.report import Report

TARGET_VENV = WORK / "venv-target-postgres"
TARGET_PACKAGE = "meltanolabs-target-postgres==0.8.1"  # as in meltano.yml
DATABASE = "warehouse"
TABLE = "synthetic"  # the stream's name
KEY = "synthetic_id"  # the stream's primary key column (synthetic.id)
BATCH_SIZE = 100_000  # the tap's batch_config.batch_size, as in `batch`
SMALL_BATCH_SIZE = 20_000  # smaller files: the target starts on the first one sooner
#: The runs of one repeat: label -> the tap's batch encoding (None: RECORD mode), batch_size.
MODES: dict[str, tuple[dict[str, str] | None, int]] = {
    "RECORD": (None, 0),
    "BATCH jsonl.gz": (FORMATS["jsonl.gz"], BATCH_SIZE),
    "BATCH parquet": (PARQUET, BATCH_SIZE),
    "BATCH jsonl.gz small": (FORMATS["jsonl.gz"], SMALL_BATCH_SIZE),
}
TARGET = ">= 3x"


def _label(mode: str) -> str:
    """`BATCH jsonl.gz (batch_size 20,000)`; RECORD as is."""
    encoding, size = MODES[mode]
    return mode if encoding is None else f"{mode.removesuffix(' small')} (batch_size {size:,})"


def _target_config(port: int, schema: str) -> dict[str, t.Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "user": "postgres",
        "password": "",
        "database": DATABASE,
        "default_target_schema": schema,
        # meltano.yml's config for target-postgres.
        "add_record_metadata": True,
        "load_method": "upsert",
    }


def _landed(url: str, schema: str) -> tuple[int, int]:
    """Rows in the run's table, and distinct primary keys among them."""
    import psycopg  # noqa: PLC0415 - only this measurement needs it

    with psycopg.connect(url) as conn:
        row = conn.execute(
            f'SELECT count(*), count(DISTINCT "{KEY}") FROM "{schema}"."{TABLE}"'
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def compare(report: Report, repeat: int, *, quick: bool) -> None:
    rows = 50_000 if quick else 200_000
    target = ensure_venv(TARGET_VENV, TARGET_PACKAGE, "target-postgres", "pyarrow>=15")
    logs = WORK / "logs" / "pipeline"
    logs.mkdir(parents=True, exist_ok=True)
    root = WORK / "pipeline-batch-files"
    services_dir = WORK / "pipeline-services"
    services_dir.mkdir(parents=True, exist_ok=True)
    modes = list(MODES)
    results: dict[str, list[tuple[Measured, Measured, float]]] = {m: [] for m in modes}
    pg = start_postgres(services_dir)
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        url = pg.url.rsplit("/", 1)[0] + f"/{DATABASE}"
        with Emulator(rows) as emu:
            configs: dict[str, Path] = {
                mode: (
                    batch_config(emu.base_url, root, encoding, size)
                    if encoding is not None
                    else write_json(
                        WORK / "pipeline-record.json",
                        make_tap_config(emu.base_url, [synthetic_spec()]),
                    )
                )
                for mode, (encoding, size) in MODES.items()
            }
            for i in range(repeat):
                for mode in modes:  # interleaved, so drift hits all alike
                    schema = f"bench_{modes.index(mode)}_{i}"
                    tconfig = write_json(
                        WORK / "pipeline-target.json", _target_config(pg.port, schema)
                    )
                    shutil.rmtree(root, ignore_errors=True)
                    root.mkdir(parents=True)
                    name = f"{mode.replace(' ', '-')}-{i}"
                    tap_m, target_m, wall = run_pipeline(
                        [TAP, "--config", str(configs[mode])],
                        [str(target), "--config", str(tconfig)],
                        stderr_dir=logs / name,
                    )
                    check(tap_m, f"tap ({mode})")
                    check(target_m, f"target-postgres ({mode})")
                    landed, keys = _landed(url, schema)
                    if landed != rows or keys != rows:
                        raise RuntimeError(
                            f"{mode}: {landed} rows ({keys} distinct keys) in PostgreSQL, "
                            f"expected {rows}"
                        )
                    results[mode].append((tap_m, target_m, wall))
                    report.run(
                        f"pipeline {_label(mode)} run {i + 1}: {wall:.2f} s, "
                        f"{rows / wall:,.0f} rows/s "
                        f"(tap done at {tap_m.seconds:.2f} s), peak RSS tap "
                        f"{tap_m.peak_rss_mb:.0f} MB, target {target_m.peak_rss_mb:.0f} MB, "
                        f"landed {landed}"
                    )
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)

    def med_rate(mode: str) -> float:
        return statistics.median(rows / wall for _, _, wall in results[mode])

    def rss(mode: str) -> str:
        tap_rss = statistics.median(m.peak_rss_mb for m, _, _ in results[mode])
        target_rss = statistics.median(m.peak_rss_mb for _, m, _ in results[mode])
        return f"tap {mb(tap_rss)}, target {mb(target_rss)}"

    record = med_rate("RECORD")
    label = f"{rows:,} rows x 20 fields, 1 window"
    report.rows.append(
        Row(
            f"Looker -> PostgreSQL, RECORD: tap → target-postgres 0.8.1, {label}",
            rate(record),
            rss("RECORD"),
        )
    )
    for mode in modes[1:]:
        ratio = med_rate(mode) / record
        report.rows.append(
            Row(
                f"Looker -> PostgreSQL, {_label(mode)}, same",
                rate(med_rate(mode)),
                rss(mode),
                f"batch/record {ratio:.2f}x",
                TARGET,
                ratio >= 3,
            )
        )
    report.notes.append(
        "pipeline: rows/s are the whole `tap | target-postgres` pipeline's (start of the tap to "
        "the target's exit), into a scratch PostgreSQL on the same cores; every run's table is "
        "checked to hold exactly the window's rows, each key once."
    )
