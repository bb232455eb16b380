"""The tap through Meltano into real targets writing to local S3, GCS, BigQuery and PostgreSQL.

Each test reads what landed back from the destination and compares it with the emulator's rows:
counts, keys, values and types (booleans stay booleans, timestamps land as timestamps where the
target has them, decimals survive, nulls stay null).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from tests.e2e.conftest import BQ_PROJECT, GCS_BUCKET, S3_BUCKET, looker_env
from tests.e2e.expected import (
    HISTORY_FIELDS,
    assert_records_match,
    read_jsonl,
    rows_since,
    to_record,
)

START = "2026-10-30T00:00:00+00:00"
SINCE = "2026-10-30 00:00:00"
SALES_BY_DAY = {  # the emulator's Look 2, "Sales by day, Q1 2025"
    "name": "sales_by_day",
    "look_id": 2,
    "metadata": {"primary_keys": ["order_items.created_date", "order_items.status"]},
}
SALES_BY_DAY_QUERY = {  # what that Look runs
    "fields": [
        "order_items.created_date",
        "order_items.status",
        "order_items.count",
        "order_items.total_sale_price",
    ],
    "filters": {"order_items.created_date": "2025-01-01 to 2025-04-01"},
    "sorts": ["order_items.created_date", "order_items.status"],
    "limit": "500",
}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def history_want(emu, since=SINCE):
    return rows_since(
        emu, "system__activity", "history", HISTORY_FIELDS, "history.created_time", since
    )


RUNNING = 995100  # a query still running at the first run, complete at the second


def a_running_query(emu):
    """A History row 30 minutes before the newest, still running: inside a 2-hour lookback."""
    newest = max(r["history_created_time"] for r in history_want(emu))
    at = dt.datetime.fromisoformat(newest) - dt.timedelta(minutes=30)
    emu.insert_rows(
        "system__activity",
        "history",
        [
            {
                "history.id": RUNNING,
                "history.created_time": at.strftime("%Y-%m-%d %H:%M:%S"),
                "history.runtime": None,
                "history.status": "running",
                "history.source": "api4",
                "history.is_single_query": "Yes",
                "history.query_id": 7,
                "history.user_id": None,
            }
        ],
    )


def second_batch(emu, first):
    """Change the last row of the first run and add one: what the second run must upsert.

    The running query completes too: the second run's lookback re-reads it with its new values.
    """
    last = max(first, key=lambda r: (r["history_created_time"], r["history_id"]))
    emu.insert_rows(
        "system__activity",
        "history",
        [
            {"history.id": last["history_id"], "history.status": "killed"},
            {"history.id": RUNNING, "history.status": "complete", "history.runtime": 30.5},
            {
                "history.id": 995001,
                "history.created_time": "2026-11-04 12:00:00",
                "history.runtime": 12.5,
                "history.status": "complete",
                "history.source": "api4",
                "history.is_single_query": "Yes",
                "history.query_id": 7,
                "history.user_id": None,
            },
        ],
    )
    return last["history_id"]


# ---------------------------------------------------------------- S3 (looker_ingestion)


def test_query_history_to_s3(meltano, looker_emulator, moto_s3):
    prefix = unique("looker")
    env = {
        **looker_env(looker_emulator, start_date=START, window_hours=168),
        "TARGET_S3_PREFIX": prefix,
        "TARGET_S3_CLOUD_PROVIDER_AWS_AWS_ACCESS_KEY_ID": "testing",
        "TARGET_S3_CLOUD_PROVIDER_AWS_AWS_SECRET_ACCESS_KEY": "testing",
        "TARGET_S3_CLOUD_PROVIDER_AWS_AWS_REGION": "us-east-1",
        "TARGET_S3_CLOUD_PROVIDER_AWS_AWS_BUCKET": S3_BUCKET,
        "TARGET_S3_CLOUD_PROVIDER_AWS_AWS_ENDPOINT_OVERRIDE": moto_s3.url,
    }
    meltano.run("run", "tap-looker-query", "target-s3", env=env).check()
    client = moto_s3.extra["client"]
    keys = [
        o["Key"]
        for o in client.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix).get("Contents", [])
    ]
    assert keys, "nothing landed in S3"
    assert all("/query_history/" in k and k.endswith(".jsonl.gz") for k in keys), keys
    got = []
    for key in keys:
        path = meltano.workdir / key.rsplit("/", 1)[-1]
        path.write_bytes(client.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read())
        got += read_jsonl(path)
    want = history_want(looker_emulator)
    assert_records_match(got, want, ("history_id",))


# ---------------------------------------------------------------- GCS (Looks)


def test_look_results_to_gcs(meltano, looker_emulator, gcs, monkeypatch):
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import storage  # noqa: PLC0415

    prefix = unique("looks")
    env = {
        **looker_env(looker_emulator, queries=[SALES_BY_DAY]),
        "STORAGE_EMULATOR_HOST": gcs.url,
        "TARGET_GCS_BUCKET_NAME": GCS_BUCKET,
        "TARGET_GCS_KEY_PREFIX": prefix + "/{stream}",
    }
    # target-gcs 1.2.3 re-serialises records with plain orjson, which cannot write the Decimal its
    # SDK parses JSON numbers into: the run fails. Casting each such column back with a target-side
    # stream map is the documented workaround (docs/MELTANO.md).
    broken = meltano.run("run", "tap-looker-query", "target-gcs", env=env)
    assert broken.returncode != 0
    assert "Decimal" in broken.stderr
    maps = {
        "sales_by_day": {
            "order_items_total_sale_price": "float(order_items_total_sale_price) "
            "if order_items_total_sale_price is not None else None"
        }
    }
    meltano.run(
        "run",
        "--full-refresh",
        "tap-looker-query",
        "target-gcs",
        env={**env, "TARGET_GCS_STREAM_MAPS": json.dumps(maps)},
    ).check()

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    blobs = [b for b in client.list_blobs(GCS_BUCKET, prefix=f"{prefix}/sales_by_day/") if b.size]
    assert len(blobs) == 1, [b.name for b in client.list_blobs(GCS_BUCKET, prefix=prefix)]
    path = meltano.workdir / "sales.jsonl"
    path.write_bytes(blobs[0].download_as_bytes())
    got = read_jsonl(path)
    rows = looker_emulator.query_rows(
        "thelook",
        "order_items",
        SALES_BY_DAY_QUERY["fields"],
        filters=SALES_BY_DAY_QUERY["filters"],
        sorts=SALES_BY_DAY_QUERY["sorts"],
        limit="500",
    )
    want = [to_record(r) for r in rows]
    assert 300 < len(want) < 500
    assert_records_match(got, want, ("order_items_created_date", "order_items_status"))
    assert all(isinstance(r["order_items_count"], int) for r in got)
    client.close()


# ---------------------------------------------------------------- BigQuery (Cloud Composer)


def test_system_activity_to_bigquery_upserts(meltano, looker_emulator, bigquery, monkeypatch):
    from google.cloud import bigquery as bq  # noqa: PLC0415
    from google.oauth2 import service_account  # noqa: PLC0415

    dataset = unique("looker")
    a_running_query(looker_emulator)
    env = {
        **looker_env(looker_emulator, start_date=START, window_hours=168, lookback_minutes=120),
        "BIGQUERY_EMULATOR_HOST": bigquery.extra["url"],
        "TARGET_BIGQUERY_PROJECT": BQ_PROJECT,
        "TARGET_BIGQUERY_DATASET": dataset,
        "TARGET_BIGQUERY_CREDENTIALS_PATH": bigquery.extra["credentials_path"],
        "TARGET_BIGQUERY_METHOD": "streaming_insert",
    }
    meltano.run("run", "tap-looker-query", "target-bigquery", env=env).check()
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery.url)
    creds = service_account.Credentials.from_service_account_file(
        bigquery.extra["credentials_path"]
    )
    client = bq.Client(project=BQ_PROJECT, credentials=creds)
    table = f"{BQ_PROJECT}.{dataset}.query_history"
    types = {f.name: f.field_type for f in client.get_table(table).schema}
    assert types["history_is_single_query"] == "BOOLEAN"
    assert types["history_created_time"] == "TIMESTAMP"
    assert types["history_runtime"] in ("FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC")

    def landed():
        rows = [dict(r.items()) for r in client.query(f"SELECT * FROM `{table}`").result()]
        for r in rows:
            for k, v in list(r.items()):
                if isinstance(v, dt.datetime):
                    r[k] = v.astimezone(dt.UTC).isoformat()
        return rows

    want = history_want(looker_emulator)
    assert_records_match(landed(), want, ("history_id",), columns=sorted(want[0]))
    changed = second_batch(looker_emulator, want)
    meltano.run("run", "tap-looker-query", "target-bigquery", env=env).check()
    want = history_want(looker_emulator)
    got = landed()
    assert_records_match(got, want, ("history_id",), columns=sorted(want[0]))
    assert {r["history_id"]: r for r in got}[changed]["history_status"] == "killed"
    assert [r["history_status"] for r in got if r["history_id"] == RUNNING] == ["complete"]
    client.close()


# ---------------------------------------------------------------- PostgreSQL


def test_query_history_to_postgres_upserts(meltano, looker_emulator, postgres):
    import psycopg  # noqa: PLC0415
    from psycopg.rows import dict_row  # noqa: PLC0415

    schema = unique("looker")
    a_running_query(looker_emulator)
    env = {
        **looker_env(looker_emulator, start_date=START, window_hours=168, lookback_minutes=120),
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(postgres.port),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "",
        "TARGET_POSTGRES_DATABASE": "warehouse",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    meltano.run("run", "tap-looker-query", "target-postgres", env=env).check()
    url = f"postgresql://postgres@127.0.0.1:{postgres.port}/warehouse"

    def landed():
        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = conn.execute(f'SELECT * FROM "{schema}".query_history').fetchall()
            types = {
                r["column_name"]: r["data_type"]
                for r in conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = 'query_history'",
                    [schema],
                ).fetchall()
            }
        for r in rows:
            for k, v in list(r.items()):
                if isinstance(v, dt.datetime):
                    r[k] = (
                        (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
                    )
                elif isinstance(v, Decimal) and k == "history_id":
                    r[k] = int(v)
        return rows, types

    got, types = landed()
    assert types["history_is_single_query"] == "boolean"
    assert types["history_created_time"].startswith("timestamp")
    assert types["history_runtime"] in ("numeric", "double precision")
    want = history_want(looker_emulator)
    assert_records_match(got, want, ("history_id",), columns=sorted(want[0]))
    changed = second_batch(looker_emulator, want)
    meltano.run("run", "tap-looker-query", "target-postgres", env=env).check()
    got, _ = landed()
    want = history_want(looker_emulator)
    assert_records_match(got, want, ("history_id",), columns=sorted(want[0]))
    assert {r["history_id"]: r for r in got}[changed]["history_status"] == "killed"
    assert [r["history_status"] for r in got if r["history_id"] == RUNNING] == ["complete"]
