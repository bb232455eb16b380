"""Processes for the benchmarks: the emulator, timed child processes with their peak RSS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looker_emulator.datasets.synthetic import WIDE_FIELDS

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
PYTHON = sys.executable
TAP = str(Path(PYTHON).with_name("tap-looker-query"))
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"  # the emulator's fixed test secret

#: 20 fields of the synthetic explore, mixed types (numbers, strings, yesno, times, tier, NULLs).
SYNTHETIC_FIELDS = WIDE_FIELDS
DATETIME = "synthetic.created_time"
#: The one window over all synthetic rows (the tap's end is the run's start, within 2026).
START_DATE = "2026-01-01T00:00:00Z"
WINDOW_FILTER = "2026-01-01 00:00:00 to 2027-01-01 00:00:00"


def synthetic_spec(
    name: str = "synthetic",
    fields: list[str] | None = None,
    limit: int | str = -1,
    filters: dict[str, str] | None = None,
    result_format: str = "json",
) -> dict[str, Any]:
    """A tap query spec on the synthetic explore, incremental on created_time."""
    return {
        "name": name,
        "model": "synthetic",
        "explore": "synthetic",
        "fields": fields or SYNTHETIC_FIELDS,
        "filters": filters or {},
        "sorts": [DATETIME],
        "limit": limit,
        "metadata": {
            "datetime": DATETIME,
            "primary_keys": ["synthetic.id"],
            "result_format": result_format,
        },
    }


def tap_config(base_url: str, queries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Tap config: one 8760-hour window from 2026-01-01 unless `extra` says otherwise."""
    config: dict[str, Any] = {
        "base_url": base_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "start_date": START_DATE,
        "query_timezone": "UTC",
        "window_hours": 8760,
        "queries": queries,
    }
    config.update(extra)
    return config


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


@dataclass
class Measured:
    """One timed process: wall seconds (start-up included), peak RSS, exit code."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr_path: Path | None = None


PEAK = REPO / "benchmarks" / "peak.py"
_counter = iter(range(1 << 30))


def _launch(argv: list[str]) -> tuple[list[str], Path]:
    """`argv` behind the peak-RSS launcher, and the file it will write the peak to."""
    rss_file = WORK / "logs" / f"peak-{os.getpid()}-{next(_counter)}.kib"
    rss_file.parent.mkdir(parents=True, exist_ok=True)
    return [PYTHON, "-S", str(PEAK), str(rss_file), *argv], rss_file


def _wait(proc: subprocess.Popen[bytes], rss_file: Path) -> tuple[int, float]:
    """Reap `proc`: its exit code and its child's exact peak RSS (MiB) from the launcher."""
    code = proc.wait()
    try:
        rss = int(rss_file.read_text()) / 1024.0
        rss_file.unlink()
    except (OSError, ValueError):
        rss = float("nan")
    return code, rss


def run_timed(
    argv: list[str],
    *,
    stdout: Path | None = None,
    stderr: Path | None = None,
    stdin: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 1800,
) -> Measured:
    """Run one process to completion: stdin from `stdin` (default /dev/null), stdout to
    `stdout` (default /dev/null)."""
    source = (stdin or Path(os.devnull)).open("rb")
    out = (stdout or Path(os.devnull)).open("wb")
    err_path = stderr or (WORK / "logs" / "last.stderr")
    err_path.parent.mkdir(parents=True, exist_ok=True)
    err = err_path.open("wb")
    try:
        began = time.perf_counter()
        launched, rss_file = _launch(argv)
        proc = subprocess.Popen(launched, stdin=source, stdout=out, stderr=err, env=env, cwd=cwd)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            code, rss = _wait(proc, rss_file)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - began
    finally:
        source.close()
        out.close()
        err.close()
    return Measured(seconds, rss, code, err_path)


def run_pipeline(
    first: list[str],
    second: list[str],
    *,
    stderr_dir: Path,
    env_first: dict[str, str] | None = None,
    env_second: dict[str, str] | None = None,
) -> tuple[Measured, Measured, float]:
    """`first | second`; each one's measurement and the pipeline's wall time."""
    stderr_dir.mkdir(parents=True, exist_ok=True)
    e1 = (stderr_dir / "first.stderr").open("wb")
    e2 = (stderr_dir / "second.stderr").open("wb")
    try:
        began = time.perf_counter()
        first, rss1 = _launch(first)
        second, rss2 = _launch(second)
        p1 = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=e1, env=env_first, cwd=REPO)
        p2 = subprocess.Popen(
            second, stdin=p1.stdout, stdout=subprocess.DEVNULL, stderr=e2, env=env_second, cwd=REPO
        )
        assert p1.stdout is not None
        p1.stdout.close()
        c1, r1 = _wait(p1, rss1)
        t1 = time.perf_counter() - began
        c2, r2 = _wait(p2, rss2)
        wall = time.perf_counter() - began
    finally:
        e1.close()
        e2.close()
    return (
        Measured(t1, r1, c1, stderr_dir / "first.stderr"),
        Measured(wall, r2, c2, stderr_dir / "second.stderr"),
        wall,
    )


class Emulator:
    """`python -m looker_emulator` as a separate process (its CPU is not the tap's)."""

    def __init__(self, synthetic_rows: int, query_latency: float = 0.0) -> None:
        self.synthetic_rows = synthetic_rows
        self.query_latency = query_latency
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> Emulator:  # noqa: PYI034
        argv = [
            PYTHON,
            "-m",
            "looker_emulator",
            "--port",
            "0",
            "--dataset",
            "synthetic",
            "--synthetic-rows",
            str(self.synthetic_rows),
            "--query-latency",
            str(self.query_latency),
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.__exit__()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.base_url = line
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
        self.proc = None


class MotoServer:
    """A local S3 (moto) on a free port, with one bucket."""

    def __init__(self, bucket: str = "bench-bucket") -> None:
        self.bucket = bucket
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> MotoServer:  # noqa: PYI034
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        moto = str(Path(PYTHON).with_name("moto_server"))
        log = (WORK / "logs" / "moto.log").open("wb")
        WORK.joinpath("logs").mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, cwd=WORK
        )
        log.close()
        client = self.client()
        for _ in range(100):
            try:
                client.create_bucket(Bucket=self.bucket)
                break
            except Exception:
                time.sleep(0.1)
        else:
            self.__exit__()
            raise RuntimeError("moto server did not start")
        return self

    def client(self) -> Any:
        import boto3  # noqa: PLC0415 - only the incumbent comparison needs it

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
        self.proc = None


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """Terminate a helper process, killing it if it does not exit within 10 s; close its pipes."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
