"""Local stand-ins for the destinations, started on loopback ports picked at run time.

Each ``start_*`` returns a :class:`Service` (stop it with :meth:`Service.stop`). A service that
cannot start raises :class:`ServiceError` with its log, so the test fails with the reason.
The recipes, all offline (the functions below are the reference):

* S3: ``moto_server`` (e2e group) on a free port; targets get it as their endpoint URL with the
  ``testing`` keys, and the test creates the bucket with boto3.
* GCS: ``gcp-storage-emulator start --in-memory --default-bucket B`` (e2e group); clients find it
  through ``STORAGE_EMULATOR_HOST``.
* BigQuery: bqemulator (DuckDB) in a venv of its own under ``tests/e2e/.cache`` (built with uv on
  first use), the DuckDB spatial extension loaded from its PyPI wheel (``duckdb_extensions``)
  rather than downloaded; a service-account key file made up here whose ``token_uri`` is a local
  stub granting any assertion; ``GOOGLE_OFFLINE_ENV`` keeps the Google clients off the metadata
  server; and a small proxy in front that rewrites the target's ``UPDATE SET target.col`` (which
  bqemulator rejects) to ``UPDATE SET col``.
* PostgreSQL: Debian's ``postgresql`` package (``.ci/run`` installs it): ``initdb`` a scratch
  cluster with trust auth on 127.0.0.1 in its own temp folder, run as user ``postgres`` when the
  tests run as root.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
# The BigQuery emulator runs from its own venv: it pins duckdb and pulls a large tree we keep
# out of the project's venv. Built once with uv and reused while the pins stay the same.
BQEMU_REQUIREMENTS = [
    "bqemulator==1.4.0",
    "duckdb==1.5.5",
    "duckdb-extension-spatial==1.5.5",
    "duckdb-extensions==1.5.5",
    "numpy<3",
]
# Block Google's metadata server for every Google client these tests start.
GOOGLE_OFFLINE_ENV = {
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "NO_GCE_CHECK": "True",
}


class ServiceError(RuntimeError):
    """A service did not start; the message carries its log."""


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return "(no log)"


@dataclass
class Service:
    """A started process (or thread) and what clients need to reach it."""

    name: str
    url: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stoppers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the process by its pid (SIGTERM, then SIGKILL) and run extra stoppers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()


def _spawn(
    name: str, cmd: list[str], workdir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    fh = log.open("wb")
    proc = subprocess.Popen(
        cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ, **(env or {})}
    )
    fh.close()
    return proc, log


def _wait_http(svc: Service, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.proc is not None and svc.proc.poll() is not None:
            log = _tail(svc.log) if svc.log else ""
            raise ServiceError(f"{svc.name} exited with {svc.proc.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    svc.stop()
    raise ServiceError(
        f"{svc.name} not ready at {url} after {timeout:.0f} s:\n{_tail(svc.log) if svc.log else ''}"
    )


# ---------------------------------------------------------------- S3 (moto)


def start_moto(workdir: Path) -> Service:
    """moto's S3 server on a free loopback port."""
    port = free_port()
    proc, log = _spawn(
        "moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], workdir
    )
    svc = Service("moto", url=f"http://127.0.0.1:{port}", port=port, proc=proc, log=log)
    _wait_http(svc, svc.url + "/moto-api/")
    return svc


# ---------------------------------------------------------------- GCS


def start_gcs(workdir: Path, bucket: str) -> Service:
    """gcp-storage-emulator (in memory) with ``bucket`` created."""
    port = free_port()
    cmd = [
        str(BIN / "gcp-storage-emulator"),
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--default-bucket",
        bucket,
        "--in-memory",
    ]
    proc, log = _spawn("gcs", cmd, workdir)
    svc = Service("gcs", url=f"http://127.0.0.1:{port}", port=port, proc=proc, log=log)
    _wait_http(svc, f"{svc.url}/storage/v1/b/{bucket}")
    return svc


# ---------------------------------------------------------------- BigQuery


class _TokenHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {"access_token": "e2e-token", "expires_in": 3600, "token_type": "Bearer"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def fake_service_account(workdir: Path, project: str) -> tuple[Path, Service]:
    """A service-account key file whose token_uri is a local stub that grants any assertion."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="token-stub").start()
    port = server.server_address[1]
    stub = Service("token-stub", url=f"http://127.0.0.1:{port}/token", port=port)
    stub.stoppers.append(server.server_close)
    stub.stoppers.append(server.shutdown)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sa = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "e2e",
        "private_key": pem,
        "client_email": f"e2e@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": stub.url,
    }
    path = workdir / "fake-sa.json"
    path.write_text(json.dumps(sa), encoding="utf-8")
    return path, stub


def bqemulator_venv(cache: Path) -> Path:
    """The venv holding bqemulator (built with uv on first use)."""
    digest = hashlib.sha256("\n".join(BQEMU_REQUIREMENTS).encode()).hexdigest()[:12]
    venv = cache.resolve() / f"bqemulator-{digest}"
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    uv = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    if uv is None:
        raise ServiceError("uv not found (the Makefile installs it into .venv)")
    for cmd in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            *BQEMU_REQUIREMENTS,
        ],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise ServiceError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    (venv / ".complete").touch()
    return venv


def start_bigquery(workdir: Path, cache: Path, project: str) -> Service:
    """bqemulator (DuckDB) with the spatial extension taken from its PyPI wheel, no downloads."""
    venv = bqemulator_venv(cache)
    home = workdir / "bq-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), **GOOGLE_OFFLINE_ENV}
    py = str(venv / "bin" / "python")
    done = subprocess.run(
        [py, "-c", "import duckdb_extensions; duckdb_extensions.import_extension('spatial')"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if done.returncode:
        raise ServiceError(f"bqemulator: could not install the spatial extension:\n{done.stderr}")
    rest, grpc = free_port(), free_port()
    cmd = [
        str(venv / "bin" / "bqemulator"),
        "start",
        "--rest-port",
        str(rest),
        "--grpc-port",
        str(grpc),
        "--project",
        project,
        "--log-format",
        "console",
    ]
    proc, log = _spawn("bqemulator", cmd, workdir, env)
    svc = Service("bqemulator", url=f"http://127.0.0.1:{rest}", port=rest, proc=proc, log=log)
    _wait_http(svc, f"{svc.url}/bigquery/v2/projects/{project}/datasets", timeout=90)
    return svc


# ---------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found and Path(found).resolve().parent.joinpath("pg_ctl").exists():
            return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name),
        reverse=True,
    )
    if versions:
        return versions[0].parent
    raise ServiceError(
        "PostgreSQL not installed: `apt-get install -y postgresql` (.ci/run does it)"
    )


def start_postgres(workdir: Path) -> Service:
    """A scratch PostgreSQL cluster with trust auth on 127.0.0.1 (as user postgres when root)."""
    bindir = _pg_bindir()
    # Its own folder directly under the temp root: the server user must reach it, and pytest's
    # temp folders are private to the user running the tests.
    data = Path(tempfile.mkdtemp(prefix="tap-looker-query-e2e-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    log = workdir / "postgres.log"
    init = subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode:
        raise ServiceError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data} -c fsync=off"
    start = subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data / "data"),
            "-o",
            opts,
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode:
        raise ServiceError(
            f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{_tail(data / 'server.log')}"
        )
    svc = Service(
        "postgres", url=f"postgresql://postgres@127.0.0.1:{port}/postgres", port=port, log=log
    )

    def stop() -> None:
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(data / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )

    svc.stoppers.append(lambda: shutil.rmtree(data, ignore_errors=True))
    svc.stoppers.append(stop)
    return svc


# bqemulator translates BigQuery SQL to DuckDB, whose MERGE rejects qualified column names in
# UPDATE SET ("Parser Error: Qualified column names in UPDATE .. SET not supported"). Real BigQuery
# accepts them, and z3z1ma/target-bigquery writes `UPDATE SET target.`col` = source.`col``
# when upserting. This loopback proxy drops that qualifier on the way to the emulator, nothing else.
_QUALIFIED_SET = re.compile(r"(UPDATE SET |, )target\.(`[^`]+`) = ")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def _shim_handler(upstream_port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if body and b"UPDATE SET target." in body:
                body = _QUALIFIED_SET.sub(r"\1\2 = ", body.decode("utf-8")).encode("utf-8")
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP_HEADERS:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def start_bigquery_merge_shim(upstream: Service) -> Service:
    """The SQL-qualifier proxy above, in this process, on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _shim_handler(upstream.port))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="bq-merge-shim").start()
    port = server.server_address[1]
    svc = Service("bq-merge-shim", url=f"http://127.0.0.1:{port}", port=port)
    svc.stoppers.append(server.server_close)
    svc.stoppers.append(server.shutdown)
    return svc
