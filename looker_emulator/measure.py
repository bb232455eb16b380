"""``python -m looker_emulator.measure``: the figures quoted in the README.

Start-up time of the process (until it prints its URL), start-up time of an in-process instance
(the fixture's cost once the session's data set exists), and the process's peak RSS while it
streams a 1,000,000-row synthetic result (20 fields) as json and as csv.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from looker_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator
from looker_emulator.datasets import master_database
from looker_emulator.datasets.synthetic import WIDE_FIELDS

ROWS = 1_000_000
FIELDS = WIDE_FIELDS


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def main() -> None:
    """Print the measurements."""
    starts = []
    for _ in range(3):
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "looker_emulator", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        starts.append(time.monotonic() - t0)
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        proc.stdout.close()
    print(f"process start-up to URL: {', '.join(f'{s:.2f}' for s in starts)} s")
    master_database()
    t0 = time.monotonic()
    with LookerEmulator():
        print(f"in-process start (data set built): {time.monotonic() - t0:.3f} s")

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "looker_emulator",
            "--port",
            "0",
            "--synthetic-rows",
            str(ROWS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip() + "/api/4.0"
    print(f"idle RSS: {_status_kib(proc.pid, 'VmRSS') / 1024:.1f} MiB")
    token = requests.post(
        f"{url}/login",
        data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    ).json()["access_token"]
    body = {"model": "synthetic", "view": "synthetic", "fields": FIELDS, "limit": "-1"}
    body["sorts"] = ["synthetic.created_time"]
    for fmt in ("json", "csv"):
        t0 = time.monotonic()
        size = 0
        with requests.post(
            f"{url}/queries/run/{fmt}",
            json=body,
            headers={"Authorization": f"token {token}"},
            stream=True,
            timeout=300,
        ) as r:
            for chunk in r.iter_content(1 << 16):
                size += len(chunk)
        secs = time.monotonic() - t0
        print(
            f"{fmt}: {ROWS:,} rows, {size / 1e6:.0f} MB in {secs:.1f} s "
            f"({ROWS / secs:,.0f} rows/s); "
            f"peak RSS so far {_status_kib(proc.pid, 'VmHWM') / 1024:.1f} MiB"
        )
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    proc.stdout.close()


if __name__ == "__main__":
    main()
