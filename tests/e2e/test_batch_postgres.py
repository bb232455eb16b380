"""BATCH mode through Meltano into meltanolabs-target-postgres: the same table as RECORD mode.

One RECORD-mode load and one BATCH load (jsonl.gz, then Parquet) of the same History window into
schemas of their own; the tables must hold the same rows (every column the tap sends) with the
same column types. Only the `_sdc_*` columns the target adds itself are left out: in BATCH mode
the target leaves `_sdc_extracted_at` and `_sdc_batched_at` NULL.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import looker_env
from tests.e2e.test_targets import START, history_want, unique


def _with_pyarrow(meltano) -> None:
    """pyarrow in the extractor's and the loader's venvs: what `pip_url:
    tap-looker-query[parquet]` and `pip_url: meltanolabs-target-postgres pyarrow` give a user.

    Without it the loader fails on the first Parquet BATCH (`NotImplementedError: Unsupported
    batch encoding format: parquet`, seen here); the repo's meltano.yml installs neither.
    """
    uv = Path(sys.executable).with_name("uv")
    for kind, name in (("extractors", "tap-looker-query"), ("loaders", "target-postgres")):
        python = meltano.sys_dir / kind / name / "venv" / "bin" / "python"
        if subprocess.run([str(python), "-c", "import pyarrow"], check=False).returncode:
            subprocess.run(
                [str(uv), "pip", "install", "--python", str(python), "pyarrow>=15"], check=True
            )


def _table(port, schema):
    import psycopg  # noqa: PLC0415
    from psycopg.rows import dict_row  # noqa: PLC0415

    url = f"postgresql://postgres@127.0.0.1:{port}/warehouse"
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(f'SELECT * FROM "{schema}".query_history').fetchall()
        types = {
            r["column_name"]: r["data_type"]
            for r in conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'query_history'",
                [schema],
            ).fetchall()
            if not r["column_name"].startswith("_sdc_")
        }
    for r in rows:
        for k in [k for k in r if k.startswith("_sdc_")]:
            del r[k]
        for k, v in list(r.items()):
            if isinstance(v, dt.datetime):
                r[k] = (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
            elif isinstance(v, Decimal):
                r[k] = float(v)
    return sorted(rows, key=lambda r: r["history_id"]), types


@pytest.mark.parametrize(
    "encoding", [{"format": "jsonl", "compression": "gzip"}, {"format": "parquet"}]
)
def test_batch_load_equals_record_load(meltano, looker_emulator, postgres, tmp_path, encoding):
    if encoding["format"] == "parquet":
        _with_pyarrow(meltano)
    base = {
        **looker_env(looker_emulator, start_date=START, window_hours=168),
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(postgres.port),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "",
        "TARGET_POSTGRES_DATABASE": "warehouse",
    }
    record_schema, batch_schema = unique("record"), unique("batch")
    meltano.run(
        "run",
        "tap-looker-query",
        "target-postgres",
        env={**base, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": record_schema},
    ).check()
    batch_env = {
        **base,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": batch_schema,
        "TAP_LOOKER_QUERY_BATCH_CONFIG_ENCODING_FORMAT": encoding["format"],
        "TAP_LOOKER_QUERY_BATCH_CONFIG_STORAGE_ROOT": (tmp_path / "batches").as_uri(),
        "TAP_LOOKER_QUERY_BATCH_CONFIG_STORAGE_PREFIX": "e2e-",
        # A new state id: the BATCH load starts from start_date as the RECORD load did.
        "MELTANO_STATE_BACKEND_URI": f"file://{tmp_path / 'state'}",
    }
    if "compression" in encoding:
        batch_env["TAP_LOOKER_QUERY_BATCH_CONFIG_ENCODING_COMPRESSION"] = encoding["compression"]
    meltano.run(
        "run", "--full-refresh", "tap-looker-query", "target-postgres", env=batch_env
    ).check()
    files = list((tmp_path / "batches").iterdir())
    suffix = ".parquet" if encoding["format"] == "parquet" else ".jsonl.gz"
    assert files and all(f.name.startswith("e2e-") and f.name.endswith(suffix) for f in files)

    record_rows, record_types = _table(postgres.port, record_schema)
    batch_rows, batch_types = _table(postgres.port, batch_schema)
    assert batch_types == record_types
    assert record_types["history_created_time"].startswith("timestamp")
    assert record_types["history_is_single_query"] == "boolean"
    assert len(record_rows) == len(history_want(looker_emulator)) > 0
    assert batch_rows == record_rows
