"""The emulator as a process (``python -m looker_emulator``): start-up, flags, memory."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from looker_emulator import LookerEmulator
from looker_emulator.datasets.synthetic import WIDE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_FIELDS = WIDE_FIELDS


def start_process(*args: str) -> tuple[subprocess.Popen, str, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "looker_emulator", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url, time.monotonic() - t0


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def login(
    url: str, client_id: str = "emulator-client-id", client_secret: str = "emulator-client-secret"
) -> requests.Response:
    return requests.post(
        f"{url}/api/4.0/login",
        data={"client_id": client_id, "client_secret": client_secret},
        timeout=10,
    )


def test_process_prints_url_first_and_stops_on_sigterm() -> None:
    proc, url, startup = start_process(
        "--client-id", "cid", "--client-secret", "csec", "--dataset", "system_activity"
    )
    try:
        assert url.startswith("http://127.0.0.1:")
        assert startup < 5  # target < 2 s; measured figures are in the README
        assert login(url).status_code == 404
        token = login(url, "cid", "csec").json()["access_token"]
        models = requests.get(
            f"{url}/api/4.0/lookml_models",
            params={"include_internal": "true"},
            headers={"Authorization": f"token {token}"},
            timeout=10,
        ).json()
        assert [x["name"] for x in models] == ["system__activity", "i__looker"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()


def test_help_documents_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "looker_emulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in (
        "--port",
        "--host",
        "--client-id",
        "--client-secret",
        "--synthetic-rows",
        "--query-latency",
        "--dataset",
    ):
        assert flag in out


def test_in_process_start_is_cheap(looker_emulator_session) -> None:
    t0 = time.monotonic()
    with LookerEmulator() as emu:
        assert emu.base_url.startswith("http://127.0.0.1:")
    assert time.monotonic() - t0 < 0.3


@pytest.mark.slow
def test_streaming_a_million_rows_stays_small() -> None:
    proc, url, _ = start_process("--synthetic-rows", "1000000")
    try:
        token = login(url).json()["access_token"]
        body = {
            "model": "synthetic",
            "view": "synthetic",
            "fields": SYNTHETIC_FIELDS,
            "sorts": ["synthetic.created_time"],
            "limit": "-1",
        }
        rows = 0
        tail = b""
        with requests.post(
            f"{url}/api/4.0/queries/run/json",
            json=body,
            headers={"Authorization": f"token {token}"},
            stream=True,
            timeout=120,
        ) as r:
            assert r.headers["Transfer-Encoding"] == "chunked"
            for chunk in r.iter_content(1 << 16):
                rows += chunk.count(b"\n")  # json escapes newlines inside strings
                tail = chunk[-64:]
        assert rows + 1 == 1_000_000
        assert tail.endswith(b"}]")
        assert peak_rss_kib(proc.pid) < 100 * 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
