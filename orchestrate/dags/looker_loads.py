"""Run one shard with ``meltano run``, summarise what it loaded, and publish the notice to Pub/Sub.

No Airflow import: the DAG calls these functions from its tasks.

The summary (the Pub/Sub message) names the pipeline, the shard's state ID, its streams with the
rows the tap sent (the SDK's ``record_count`` metrics) and their bookmarks before and after, and
where the loader put the data (the loader's location settings, never its credentials).
"""

# ruff: noqa: INP001 - lives in Airflow's dags folder, which is on sys.path, not a package
from __future__ import annotations

import json
import logging
import subprocess
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from looker_shards import Deployment, Shard

log = logging.getLogger(__name__)
# Loader settings that say where data lands; credentials are never among them.
LOCATION_SETTINGS = (
    "destination_path",
    "host",
    "port",
    "database",
    "default_target_schema",
    "project",
    "dataset",
    "bucket_name",
    "key_prefix",
    "prefix",
    "cloud_provider.aws.aws_bucket",
)


class LoadError(RuntimeError):
    """``meltano run`` failed; the message ends with the tail of its log."""


def _meltano(meltano: str, project_dir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - Meltano, with arguments from meltano.yml
        [meltano, *args], cwd=project_dir, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        msg = f"meltano {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
        raise LoadError(msg)
    return done.stdout


def bookmarks(
    meltano: str, project_dir: Path, env: dict[str, str], state_id: str
) -> dict[str, Any]:
    """Each stream's bookmark (``replication_key_value``) in the shard's saved state."""
    out = _meltano(meltano, project_dir, env, "state", "get", state_id).strip()
    state = json.loads(out.splitlines()[-1]) if out else {}
    return {
        stream: b.get("replication_key_value")
        for stream, b in state.get("singer_state", {}).get("bookmarks", {}).items()
    }


def _location(config: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:  # noqa: ANN401 - any JSON value
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        else:
            flat[prefix.removesuffix(".")] = value

    walk("", config)
    return {k: flat[k] for k in LOCATION_SETTINGS if flat.get(k) not in (None, "")}


def run_shard(
    deployment: Deployment, shard: Shard, *, meltano: str, project_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """``meltano run <extractor> <loader>`` with the shard's query budget; its load summary.

    A failed run raises :class:`LoadError`. Meltano has then saved the STATE the loader had
    confirmed, so the task's retry resumes there instead of starting over.
    """
    state_id = shard.state_id(deployment.environment)
    run_env = {**env, shard.budget_env: str(shard.max_concurrent_queries)}
    before = bookmarks(meltano, project_dir, run_env, state_id)
    started = datetime.now(UTC)
    rows: Counter[str] = Counter()
    cmd = [meltano, "--log-format=json", "run", shard.extractor, shard.loader]
    with subprocess.Popen(  # noqa: S603 - Meltano, with arguments from meltano.yml
        cmd,
        cwd=project_dir,
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None  # noqa: S101 - stderr=PIPE
        tail: list[str] = []
        for line in proc.stderr:
            tail = [*tail[-40:], line]
            rows.update(_record_count(line))
            log.info("%s", line.rstrip())
    if proc.returncode:
        msg = f"meltano run {shard.extractor} {shard.loader} exited {proc.returncode}:\n"
        raise LoadError(msg + "".join(tail))
    after = bookmarks(meltano, project_dir, run_env, state_id)
    config = json.loads(
        _meltano(meltano, project_dir, run_env, "config", "print", shard.loader) or "{}"
    )
    return {
        "pipeline": deployment.dag_id,
        "job": deployment.job,
        "shard": shard.extractor,
        "state_id": state_id,
        "streams": {
            stream: {
                "rows": rows.get(stream, 0),
                "bookmark": after.get(stream),
                "previous_bookmark": before.get(stream),
            }
            for stream in sorted({*shard.streams, *rows, *after} - {"*"})
        },
        "destination": {"loader": shard.loader, **_location(config)},
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }


def _record_count(line: str) -> dict[str, int]:
    """Rows in one of the SDK's ``record_count`` METRIC lines (Meltano's JSON log format)."""
    if '"record_count"' not in line:
        return {}
    try:
        info = json.loads(line).get("metric_info") or {}
    except json.JSONDecodeError:
        return {}
    stream = (info.get("tags") or {}).get("stream")
    if info.get("metric") != "record_count" or not stream:
        return {}
    return {stream: int(info.get("value", 0))}


def publish(topic: str, summaries: list[dict[str, Any]]) -> list[str]:
    """One Pub/Sub message per summary (JSON body; pipeline and shard also as attributes)."""
    # Imported here so that parsing the DAG does not load the client. It honours
    # PUBSUB_EMULATOR_HOST, and on Cloud Composer uses the environment's service account.
    from google.cloud import pubsub_v1  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

    publisher = pubsub_v1.PublisherClient()
    futures = [
        publisher.publish(
            topic,
            json.dumps(s, sort_keys=True).encode(),
            pipeline=s["pipeline"],
            shard=s["shard"],
            state_id=s["state_id"],
        )
        for s in summaries
    ]
    return [f.result(timeout=60) for f in futures]
