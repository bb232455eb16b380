"""The incumbent: looker_ingestion 1.4.2 against the tap piped into a real S3 target.

Both land in the same local moto S3 server, from the same emulator, query and window.

* looker_ingestion (PyPI `looker-ingestion==1.4.2`) runs in its own venv under
  `benchmarks/.work/`. It reads `LOOKERSDK_BASE_URL/CLIENT_ID/CLIENT_SECRET`, runs the query with
  `looker_sdk.init40().run_inline_query` (the whole body as one string), `json.loads` it and
  writes `json.dumps(rows)` to `s3://$bucket_name/looker/<name>/json/looker_<name>_<ts>.json`
  through `boto3.resource("s3")` + smart_open. Its boto3 (1.44) honours `AWS_ENDPOINT_URL`, so
  no patching is needed. A `datetime` filter given in the spec is used as is (no S3 bookmark).
* The tap runs as `tap-looker-query | target-s3-jsonl` (target-s3-jsonl 2.0.1 in its own venv),
  JSONL + gzip, `aws_endpoint_url` pointing at moto.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import typing as t

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
    MotoServer,
    run_pipeline,
    run_timed,
    synthetic_spec,
    tap_config,
    write_json,
)
from benchmarks.measures import check, log, mb, rate
from benchmarks.report import Row

if t.TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.report import Report

LI_VENV = WORK / "venv-looker-ingestion"
TARGET_VENV = WORK / "venv-target-s3-jsonl"
LI_PACKAGE = "looker-ingestion==1.4.2"
# The faster of the two S3 targets that work offline (destinations tested for this project):
# 200,000 records in 9.6 s here, against ~58 s for plinxore-target-s3 0.1.7 (SDK 0.33).
TARGET_PACKAGE = "target-s3-jsonl==2.0.1"
LIMIT_ROWS = 514  # a window holding 514 rows, queried with limit "100"
LIMIT = 100


def ensure_venv(venv: Path, package: str, executable: str, *extra: str) -> Path:
    """A venv with `package` (and `extra` packages) installed (created on first use); its
    `executable`."""
    exe = venv / "bin" / executable
    if exe.exists():
        return exe
    log(f"installing {package} into {venv.relative_to(WORK.parent.parent)}")
    subprocess.run([PYTHON, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", package, *extra],
        check=True,
    )
    if not exe.exists():
        raise RuntimeError(f"{package} installed no {executable}")
    return exe


def _li_env(base_url: str, moto: MotoServer) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOOKERSDK_", "AWS_", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "LOOKERSDK_BASE_URL": base_url,
            "LOOKERSDK_CLIENT_ID": CLIENT_ID,
            "LOOKERSDK_CLIENT_SECRET": CLIENT_SECRET,
            "LOOKERSDK_VERIFY_SSL": "false",
            "LOOKERSDK_TIMEOUT": "600",
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "bucket_name": moto.bucket,
        }
    )
    return env


def _li_spec(name: str, limit: int | str, filters: dict[str, str]) -> dict[str, t.Any]:
    return {
        "name": name,
        "model": "synthetic",
        "explore": "synthetic",
        "fields": SYNTHETIC_FIELDS,
        "filters": {DATETIME: WINDOW_FILTER, **filters},
        "sorts": [DATETIME],
        "limit": str(limit),
        "metadata": {"datetime": DATETIME, "result_format": "json"},
    }


def _target_config(moto: MotoServer, prefix: str) -> dict[str, t.Any]:
    work = WORK / "incumbent" / "target-work"
    work.mkdir(parents=True, exist_ok=True)
    return {
        "s3_bucket": moto.bucket,
        # target-s3-jsonl reads path_template (s3_key_prefix is ignored).
        "path_template": prefix + "/{stream}/{date_time:%Y%m%dT%H%M%S%f}.jsonl",
        "compression": "gzip",
        "aws_endpoint_url": moto.url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "work_dir": str(work),
    }


def _objects(moto: MotoServer, prefix: str) -> list[bytes]:
    client = moto.client()
    bodies = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=moto.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=moto.bucket, Key=obj["Key"])["Body"].read()
            bodies.append(gzip.decompress(body) if obj["Key"].endswith(".gz") else body)
    return bodies


def li_rows_landed(moto: MotoServer, name: str) -> int:
    return sum(len(json.loads(body)) for body in _objects(moto, f"looker/{name}/"))


def tap_rows_landed(moto: MotoServer, prefix: str) -> int:
    return sum(
        sum(1 for line in body.splitlines() if line.strip()) for body in _objects(moto, prefix)
    )


def run_li(
    exe: Path, env: dict[str, str], name: str, limit: int | str, filters: dict[str, str]
) -> tuple[t.Any, Path]:
    spec_path = write_json(WORK / "incumbent" / f"{name}.json", _li_spec(name, limit, filters))
    m = run_timed(
        [str(exe), "--json_file", str(spec_path)],
        env=env,
        stderr=WORK / "logs" / "incumbent" / f"{name}.stderr",
        cwd=WORK,
    )
    check(m, "looker_ingestion")
    return m, spec_path


def run_tap_to_s3(
    target: Path, moto: MotoServer, base_url: str, name: str, spec: dict[str, t.Any]
) -> tuple[t.Any, t.Any, float]:
    config = write_json(WORK / "incumbent" / f"{name}-tap.json", tap_config(base_url, [spec]))
    tconfig = write_json(
        WORK / "incumbent" / f"{name}-target.json", _target_config(moto, f"tap/{name}")
    )
    tap_m, target_m, wall = run_pipeline(
        [TAP, "--config", str(config)],
        [str(target), "--config", str(tconfig)],
        stderr_dir=WORK / "logs" / "incumbent" / name,
    )
    check(tap_m, "tap")
    check(target_m, "target-s3")
    return tap_m, target_m, wall


def compare(report: Report, repeat: int, *, quick: bool) -> None:
    rows = 50_000 if quick else 200_000
    li = ensure_venv(LI_VENV, LI_PACKAGE, "extract_looker_metadata")
    target = ensure_venv(TARGET_VENV, TARGET_PACKAGE, "target-s3-jsonl")
    li_runs: list[tuple[float, float]] = []
    tap_runs: list[tuple[float, float, float]] = []
    alone_runs: list[tuple[float, float]] = []
    ceiling_runs: list[float] = []
    with MotoServer() as moto, Emulator(rows) as emu:
        env = _li_env(emu.base_url, moto)
        # The tap's output, recorded once: fed from a file, the target shows its own ceiling.
        recorded = WORK / "incumbent" / "tap-output.jsonl"
        config = write_json(
            WORK / "incumbent" / "record.json", tap_config(emu.base_url, [synthetic_spec("rec")])
        )
        check(run_timed([TAP, "--config", str(config)], stdout=recorded), "tap")
        for i in range(repeat):
            name = f"li_run{i}"
            m, _ = run_li(li, env, name, -1, {})
            landed = li_rows_landed(moto, name)
            if landed != rows:
                raise RuntimeError(f"looker_ingestion landed {landed} rows, expected {rows}")
            li_runs.append((rows / m.seconds, m.peak_rss_mb))
            line = (
                f"incumbent looker_ingestion run {i + 1}: {m.seconds:.2f} s, "
                f"{rows / m.seconds:,.0f} rows/s, peak RSS {m.peak_rss_mb:.0f} MB, landed {landed}"
            )
            report.run(line)

            name = f"tap_run{i}"
            spec = synthetic_spec(name)
            config = write_json(WORK / "incumbent" / "alone.json", tap_config(emu.base_url, [spec]))
            alone = run_timed(
                [TAP, "--config", str(config)], stderr=WORK / "logs" / "incumbent" / "alone.stderr"
            )
            check(alone, "tap")
            alone_runs.append((rows / alone.seconds, alone.peak_rss_mb))
            line = (
                f"incumbent tap -> /dev/null run {i + 1}: {alone.seconds:.2f} s, "
                f"{rows / alone.seconds:,.0f} rows/s, peak RSS {alone.peak_rss_mb:.0f} MB"
            )
            report.run(line)
            tap_m, target_m, wall = run_tap_to_s3(target, moto, emu.base_url, name, spec)
            landed = tap_rows_landed(moto, f"tap/{name}")
            if landed != rows:
                raise RuntimeError(f"tap | target-s3 landed {landed} rows, expected {rows}")
            tap_runs.append((rows / wall, tap_m.peak_rss_mb, target_m.peak_rss_mb))
            line = (
                f"incumbent tap | target-s3 run {i + 1}: {wall:.2f} s, {rows / wall:,.0f} rows/s "
                f"(tap alone done at {tap_m.seconds:.2f} s), peak RSS tap {tap_m.peak_rss_mb:.0f}"
                f" MB, target {target_m.peak_rss_mb:.0f} MB, landed {landed}"
            )
            report.run(line)

            tconfig = write_json(
                WORK / "incumbent" / "ceiling-target.json",
                _target_config(moto, f"tap/ceiling{i}"),
            )
            fed = run_timed(
                [str(target), "--config", str(tconfig)],
                stdin=recorded,
                stderr=WORK / "logs" / "incumbent" / "ceiling.stderr",
            )
            check(fed, "target-s3")
            landed = tap_rows_landed(moto, f"tap/ceiling{i}")
            if landed != rows:
                raise RuntimeError(f"target-s3 fed from a file landed {landed} rows, not {rows}")
            ceiling_runs.append(rows / fed.seconds)
            line = (
                f"incumbent target-s3 fed from a file run {i + 1}: {fed.seconds:.2f} s, "
                f"{rows / fed.seconds:,.0f} rows/s, peak RSS {fed.peak_rss_mb:.0f} MB"
            )
            report.run(line)

        # Rows lost when the window holds more rows than the limit.
        id_filter = {"synthetic.id": f"1 to {LIMIT_ROWS}"}
        run_li(li, env, "li_limit", LIMIT, id_filter)
        li_landed = li_rows_landed(moto, "li_limit")
        spec = synthetic_spec("tap_limit", limit=LIMIT, filters=id_filter)
        run_tap_to_s3(target, moto, emu.base_url, "tap_limit", spec)
        tap_landed = tap_rows_landed(moto, "tap/tap_limit")
        line = (
            f"limit: window of {LIMIT_ROWS} rows, limit {LIMIT}: looker_ingestion landed "
            f"{li_landed}, tap | target-s3 landed {tap_landed}"
        )
        report.run(line)

    li_rate = statistics.median(r for r, _ in li_runs)
    li_rss = statistics.median(m for _, m in li_runs)
    tap_rate = statistics.median(r for r, _, _ in tap_runs)
    tap_rss = statistics.median(m for _, m, _ in tap_runs)
    target_rss = statistics.median(m for _, _, m in tap_runs)
    alone_rate = statistics.median(r for r, _ in alone_runs)
    alone_rss = statistics.median(m for _, m in alone_runs)
    ceiling_rate = statistics.median(ceiling_runs)
    label = f"{rows:,} rows, 1 window -> moto S3"
    report.rows += [
        Row(f"looker_ingestion 1.4.2, {label}", rate(li_rate), mb(li_rss)),
        Row(
            f"tap -> /dev/null, same {rows:,} rows (the extractor alone)",
            rate(alone_rate),
            mb(alone_rss),
            f"rows/s {alone_rate / li_rate:.2f}x, RSS {alone_rss / li_rss:.2f}x",
        ),
        Row(
            f"tap → target-s3-jsonl (jsonl.gz), {label}: rows/s",
            rate(tap_rate),
            f"tap {mb(tap_rss)}, target {mb(target_rss)}",
            f"{tap_rate / li_rate:.2f}x looker_ingestion",
            "> 1x",
            tap_rate > li_rate,
        ),
        Row(
            "target-s3-jsonl alone, fed the tap's recorded output from a file: rows/s",
            rate(ceiling_rate),
            "",
            f"{ceiling_rate / li_rate:.2f}x looker_ingestion (ceiling for any extractor)",
        ),
        Row(
            "same: peak RSS, tap + target vs looker_ingestion",
            mb(tap_rss + target_rss),
            mb(tap_rss + target_rss),
            f"{(tap_rss + target_rss) / li_rss:.2f}x looker_ingestion",
            "< 1x",
            tap_rss + target_rss < li_rss,
        ),
        Row(
            f"rows lost, window of {LIMIT_ROWS} rows with limit {LIMIT}",
            f"looker_ingestion {LIMIT_ROWS - li_landed}, tap {LIMIT_ROWS - tap_landed}",
            "",
            "",
            "tap loses 0",
            tap_landed == LIMIT_ROWS,
        ),
    ]
    report.notes.append(
        "incumbent: the tap → target-s3 rows/s is the whole pipeline's, bound by the target "
        "(the tap blocks on the pipe); the tap → /dev/null line on the same emulator is the "
        "extractor alone, and target-s3-jsonl fed the same records from a file is the "
        "fastest any extractor could make that pipeline."
    )
