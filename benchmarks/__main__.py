"""`python -m benchmarks [--quick] [--only NAME ...] [--repeat N]` (what `make bench` runs).

Measurements (names for --only):

* `throughput`: the raw baseline (`benchmarks/raw_baseline.py`), the tap and a default-configured
  singer-sdk stream (`benchmarks/sdk_default_tap.py`), each a process writing to /dev/null, on
  one window of the synthetic explore (20 fields); runs interleaved, medians compared.
* `memory`: the tap's peak RSS (exact, from wait4's ru_maxrss) for a 200,000- and a
  2,000,000-row window.
* `overlap`: 300 ms per query; 3 streams x 20 windows with max_concurrent_queries 1, 4 and 8;
  records in order and the final bookmarks checked.
* `incumbent`: looker_ingestion 1.4.2 (own venv) into a moto S3 against the tap piped into
  target-s3-jsonl 2.0.1 (own venv) into the same moto; that target fed the tap's recorded
  output from a file (its own ceiling); and a window over its row limit.
* `batch`: the tap in BATCH mode (jsonl, jsonl.gz, Parquet) writing to a local root, interleaved
  with the raw baseline, rows counted in the files; and BATCH Parquet's peak RSS for a
  2,000,000-row window with batch_size 1,000,000 (`benchmarks/batch.py`).
* `pipeline`: Looker -> PostgreSQL, the tap piped into meltanolabs-target-postgres 0.8.1 (own
  venv) loading a scratch PostgreSQL (the e2e tests' cluster), in RECORD mode and in BATCH mode
  (jsonl.gz, Parquet), rows landed checked in the table (`benchmarks/pipeline.py`).

Every process is timed whole, start-up included. The table goes to stdout and, with the machine
and the date, to `benchmarks/RESULTS.md` (unless --no-write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path

from benchmarks import batch, incumbent, measures, pipeline
from benchmarks.harness import REPO, load_average
from benchmarks.report import Report, Row

RESULTS = REPO / "benchmarks" / "RESULTS.md"
NAMES = ("throughput", "memory", "overlap", "incumbent", "batch", "pipeline")


def machine() -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {nproc} cores ({cpu}), {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller row counts, 1 run each")
    p.add_argument("--only", nargs="+", choices=NAMES, help="run only these measurements")
    p.add_argument("--repeat", type=int, help="runs per measurement (default 3; --quick 1)")
    p.add_argument("--no-write", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    only = args.only or list(NAMES)
    report = Report()
    load_before = load_average()
    print(f"load average before: {load_before}; {repeat} run(s) each", file=sys.stderr)

    for name in only:
        print(f"== {name}", file=sys.stderr)
        try:
            if name == "throughput":
                measures.throughput(report, repeat, quick=args.quick)
            elif name == "memory":
                measures.memory(report, repeat, quick=args.quick)
            elif name == "overlap":
                measures.overlap(report, repeat, quick=args.quick)
            elif name == "incumbent":
                incumbent.compare(report, repeat, quick=args.quick)
            elif name == "batch":
                batch.compare(report, repeat, quick=args.quick)
            elif name == "pipeline":
                pipeline.compare(report, repeat, quick=args.quick)
        except Exception as exc:  # report and go on with the other measurements
            report.errors += 1
            report.rows.append(Row(name, f"error: {exc}", ok=False))
            report.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
            print(f"{name} failed: {exc!r}", file=sys.stderr)

    load_after = load_average()
    table = report.table()
    print(table)
    for note in report.notes:
        print(f"- {note}")
    if not args.no_write:
        command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
        text = [
            "# Benchmark results",
            "",
            "Latest `make bench` table (`python -m benchmarks`; see `python -m benchmarks --help`",
            "and `benchmarks/__main__.py` for what each line measures). Rows/s are rows divided by",
            "the whole process's wall time, start-up included; peak RSS is the process's exact",
            "high-water mark (wait4 ru_maxrss). Ratios compare medians of the same run.",
            "",
            *machine(),
            f"- command: `{command.strip()}` ({repeat} run(s) per measurement)",
            f"- load average (1/5/15 min) before: {load_before}; after: {load_after}",
            "",
            *(
                [
                    (
                        "**--quick run**: fewer rows (throughput 200k, memory 100k -> 1M, "
                        "incumbent 50k instead of 200k, pipeline 50k instead of 200k); the "
                        "targets are stated for the full run (`make bench`)."
                    ),
                    "",
                ]
                if args.quick
                else []
            ),
            (
                "The emulator runs as its own process on the same 2 cores: the tap, the baseline "
                "and the emulator compete for CPU, and other jobs on a shared machine add noise "
                "(see the load averages). Compare ratios, not absolute rows/s, across machines."
            ),
            "",
            table,
            "",
        ]
        if report.notes:
            text += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
        if report.runs:
            text += ["## Individual runs", "", "```", *report.runs, "```", ""]
        RESULTS.write_text("\n".join(text))
        print(f"written to {RESULTS.relative_to(REPO)}", file=sys.stderr)
    # A missed target is a result, not an error: exit 1 only when a measurement could not run.
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
