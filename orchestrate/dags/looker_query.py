"""Airflow DAGs for the Looker pipelines of a Meltano project (Airflow 3, as on Cloud Composer).

One DAG per Meltano schedule that runs a job (``meltano_<schedule>``, as Meltano's own DAG
generator names them), one ``meltano run <extractor> <loader>`` task per shard of that job, and a
last task that publishes one Pub/Sub message per successful load. Each shard's task takes
``max_concurrent_queries`` slots of its Looker API user's pool (15 slots), so shards that run in
parallel never exceed Looker's 15 concurrent queries per user. See docs/DEPLOY.md.

Environment: ``LOOKER_QUERY_MELTANO_PROJECT`` (the Meltano project; default: this folder's parent),
``LOOKER_QUERY_MELTANO`` (the ``meltano`` executable; default ``meltano``),
``LOOKER_QUERY_PUBSUB_TOPIC`` (``projects/<project>/topics/<topic>``; unset: no notice).
"""

# ruff: noqa: INP001 - lives in Airflow's dags folder, which is on sys.path, not a package
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import looker_loads
import looker_shards
from airflow.exceptions import AirflowFailException
from airflow.sdk import DAG, task

PROJECT_DIR = Path(os.environ.get("LOOKER_QUERY_MELTANO_PROJECT", looker_shards.DEFAULT_PROJECT))
MELTANO = os.environ.get("LOOKER_QUERY_MELTANO", "meltano")
log = logging.getLogger(__name__)

# A retry re-runs `meltano run`, which starts from the state the loader last confirmed.
RETRIES = 2
RETRY_DELAY = timedelta(minutes=5)
# A shard stuck longer than this frees its pool slots for the others.
EXECUTION_TIMEOUT = timedelta(hours=6)


def _shard_task(deployment: looker_shards.Deployment, shard: looker_shards.Shard) -> Any:  # noqa: ANN401 - an Airflow XComArg
    @task(
        task_id=shard.task_id,
        pool=shard.pool,
        pool_slots=shard.max_concurrent_queries,
        retries=RETRIES,
        retry_delay=RETRY_DELAY,
        retry_exponential_backoff=True,
        execution_timeout=EXECUTION_TIMEOUT,
        doc_md=f"`meltano run {shard.extractor} {shard.loader}`: streams "
        f"{', '.join(shard.streams)}; {shard.max_concurrent_queries} of pool {shard.pool}'s "
        f"{looker_shards.LOOKER_QUERY_SLOTS} slots; "
        f"state ID {shard.state_id(deployment.environment)}",
    )
    def load() -> dict[str, Any]:
        return looker_loads.run_shard(
            deployment, shard, meltano=MELTANO, project_dir=PROJECT_DIR, env=dict(os.environ)
        )

    return load()


def _notify_task(task_ids: list[str]) -> Any:  # noqa: ANN401 - an Airflow XComArg
    @task(
        task_id="notify", trigger_rule="all_done", retries=RETRIES, retry_delay=timedelta(minutes=1)
    )
    def notify(**context: Any) -> list[str]:  # noqa: ANN401 - Airflow's context
        """Publish one message per shard that loaded; then fail if any shard did not."""
        summaries = {t: context["ti"].xcom_pull(task_ids=t) for t in task_ids}
        loaded = [s for s in summaries.values() if s]
        topic = os.environ.get("LOOKER_QUERY_PUBSUB_TOPIC")
        ids = looker_loads.publish(topic, loaded) if topic and loaded else []
        log.info(
            "published %d load notices to %s", len(ids), topic or "(no LOOKER_QUERY_PUBSUB_TOPIC)"
        )
        failed = sorted(t for t, s in summaries.items() if not s)
        if failed:
            msg = f"no load, so no notice, for shards: {', '.join(failed)}"
            raise AirflowFailException(msg)
        return ids

    return notify()


for _deployment in looker_shards.load(PROJECT_DIR):
    with DAG(
        dag_id=_deployment.dag_id,
        schedule=_deployment.interval,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        # One run at a time: a shard's next run starts from the state its last one saved.
        max_active_runs=1,
        tags=["meltano", "looker"],
        doc_md=f"Meltano schedule `{_deployment.schedule}` (job `{_deployment.job}`), one task per "
        f"shard; see docs/DEPLOY.md.",
    ):
        _loads = [_shard_task(_deployment, s) for s in _deployment.shards]
        _loads >> _notify_task([s.task_id for s in _deployment.shards])
