"""Fixtures for the Meltano end-to-end tests: the repo's meltano.yml, installed once per session.

Meltano runs in the repository (so ``pip_url: -e .`` and every plugin definition are the checked-in
ones) with ``MELTANO_SYS_DIR_ROOT`` in a session temp folder: plugin venvs live there, and each
test gets its own system database (state) and output folder. Loader settings that point at the
local emulators are passed the way a user would set them, as ``TARGET_*`` environment variables.
``MELTANO_HUB_URL`` points at a dead loopback port, so any Hub access fails loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from looker_emulator.fixtures import (  # noqa: F401 - the emulator's fixtures, for these tests
    _looker_master_db,
    looker_emulator,
    looker_emulator_session,
)
from tests.e2e import services

if TYPE_CHECKING:
    from collections.abc import Iterator

    from looker_emulator import LookerEmulator

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(__file__).resolve().parent / ".cache"
LOADERS = ["target-jsonl", "target-s3", "target-gcs", "target-bigquery", "target-postgres"]
BQ_PROJECT = "test-project"
GCS_BUCKET = "looker-e2e"
S3_BUCKET = "looker-e2e"
# Variables of the surrounding shell that would change what Meltano or the plugins do.
_LEAKY_PREFIXES = (
    "TAP_LOOKER_QUERY",
    "TARGET_",
    "MELTANO_",
    "LOOKERSDK_",
    "GOOGLE_",
    "AWS_",
    "BIGQUERY_",
    "STORAGE_EMULATOR",
)


@dataclass
class MeltanoResult:
    """A finished ``meltano`` command."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> MeltanoResult:
        """Fail the test with Meltano's output when the command failed."""
        if self.returncode:
            pytest.fail(
                f"meltano {' '.join(self.args)} exited {self.returncode} "
                f"after {self.seconds:.1f} s\n"
                f"--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-12000:]}"
            )
        return self


@dataclass
class Meltano:
    """The repo's Meltano project with a private system dir; one instance per test."""

    sys_dir: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> MeltanoResult:
        """``meltano ARGS`` in the repo with this test's environment."""
        full_env = {**_clean_environ(), **self.base_env(), **self.env, **(env or {})}
        start = time.monotonic()
        done = subprocess.run(
            [str(Path(sys.executable).with_name("meltano")), *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return MeltanoResult(
            list(args), done.returncode, done.stdout, done.stderr, time.monotonic() - start
        )

    def base_env(self) -> dict[str, str]:
        return {
            "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.workdir / 'meltano.db'}",
            "MELTANO_HUB_URL": "http://127.0.0.1:9/",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_CLI_LOG_LEVEL": "info",
            "TARGET_JSONL_DESTINATION_PATH": str(self.workdir / "output"),
            **services.GOOGLE_OFFLINE_ENV,
        }

    def state(self, state_id: str) -> dict[str, Any]:
        """``meltano state get STATE_ID`` as JSON."""
        out = self.run("state", "get", state_id).check()
        return json.loads(out.stdout.strip().splitlines()[-1])


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}


def looker_env(
    emu: LookerEmulator, prefix: str = "TAP_LOOKER_QUERY", **settings: Any
) -> dict[str, str]:
    """Tap settings as Meltano env vars (``queries`` and objects as one JSON document)."""
    values: dict[str, Any] = {
        "base_url": emu.base_url,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        **settings,
    }
    return {
        f"{prefix}_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
        for k, v in values.items()
    }


@pytest.fixture(scope="session")
def meltano_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``meltano install`` of the extractor and all five loaders, once per session; the sys dir."""
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    work = tmp_path_factory.mktemp("meltano-install")
    result = Meltano(sys_dir, work).run("install", timeout=900).check()
    for loader in LOADERS:
        exe = sys_dir / "loaders" / loader / "venv" / "bin"
        assert exe.is_dir(), f"{loader} was not installed:\n{result.stderr[-3000:]}"
    return sys_dir


@pytest.fixture
def meltano(meltano_install: Path, tmp_path: Path) -> Meltano:
    """The installed project, with a system database and output folder of this test's own."""
    return Meltano(meltano_install, tmp_path)


@pytest.fixture(scope="session")
def e2e_services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def moto_s3(e2e_services_dir: Path) -> Iterator[services.Service]:
    """moto's S3 server with the test bucket."""
    import boto3  # noqa: PLC0415

    svc = services.start_moto(e2e_services_dir)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=svc.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=S3_BUCKET)
        svc.extra["client"] = client
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def gcs(e2e_services_dir: Path) -> Iterator[services.Service]:
    """A GCS emulator with the test bucket."""
    svc = services.start_gcs(e2e_services_dir, GCS_BUCKET)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def bigquery(e2e_services_dir: Path) -> Iterator[services.Service]:
    """bqemulator plus a fake service account whose token endpoint is local."""
    CACHE.mkdir(exist_ok=True)
    sa_path, stub = services.fake_service_account(e2e_services_dir, BQ_PROJECT)
    try:
        svc = services.start_bigquery(e2e_services_dir, CACHE, BQ_PROJECT)
    except BaseException:
        stub.stop()
        raise
    svc.extra["credentials_path"] = str(sa_path)
    svc.stoppers.append(stub.stop)
    shim = services.start_bigquery_merge_shim(svc)
    svc.extra["url"] = shim.url  # what the target talks to (see start_bigquery_merge_shim)
    svc.stoppers.append(shim.stop)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def postgres(e2e_services_dir: Path) -> Iterator[services.Service]:
    """A scratch PostgreSQL cluster (Debian's packages) with database ``warehouse``."""
    svc = services.start_postgres(e2e_services_dir)
    try:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(svc.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE warehouse")
        yield svc
    finally:
        svc.stop()
