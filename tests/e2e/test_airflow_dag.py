"""The Airflow DAG (orchestrate/) run by Airflow itself against two Looker emulators and Pub/Sub.

Airflow 3.1 runs from its own venv (``scripts/airflow-venv.sh``) with a SQLite metadata DB in a
temp ``AIRFLOW_HOME``; ``airflow dags test`` runs every task of the DAG in one process, so the
three shards run one after the other here (the pools are what keeps them apart on Composer).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from looker_emulator import LookerEmulator
from tests.e2e import pubsub_emulator, services
from tests.e2e.conftest import looker_env
from tests.e2e.expected import assert_records_match, read_jsonl, rows_since

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "orchestrate"
DAG_ID = "meltano_looker-query"
MELTANO = Path(sys.executable).with_name("meltano")
SHARDS = {  # task id: (extractor, pool, slots) as orchestrate/meltano.yml declares them
    "main--history": ("tap-looker-query--main--history", "tap-looker-query--main", 4),
    "main--orders": ("tap-looker-query--main--orders", "tap-looker-query--main", 8),
    "emea--history": ("tap-looker-query--emea--history", "tap-looker-query--emea", 6),
}
HISTORY_START = "2026-10-29 00:00:00"
ORDERS_START = "2025-04-01 00:00:00"
MAIN_HISTORY = ["history.id", "history.created_time", "history.runtime", "history.status"]
MAIN_HISTORY += ["history.source", "user.id"]
EMEA_HISTORY = ["history.id", "history.created_time", "history.status", "user.id"]
ORDERS = ["order_items.id", "order_items.created_time", "order_items.status"]
ORDERS += ["order_items.sale_price", "users.id"]
NEW_HISTORY = [
    {
        "history.id": 990001 + i,
        "history.created_time": f"2026-11-02 0{i}:00:00",
        "history.runtime": 0.5,
        "history.status": "complete",
        "history.source": "api4",
        "history.is_single_query": "Yes",
        "history.query_id": 1,
        "history.user_id": 1,
    }
    for i in range(3)
]
KEYS = {  # stream: (primary key, replication key) properties
    "query_history": ("history_id", "history_created_time"),
    "order_items": ("order_items_id", "order_items_created_time"),
    "emea_query_history": ("history_id", "history_created_time"),
}
# What the environment may not leak into Airflow or Meltano.
_LEAKY = ("TAP_", "TARGET_", "MELTANO_", "AIRFLOW", "LOOKER", "PUBSUB", "GOOGLE_", "LOOKERSDK")


@dataclass
class Airflow:
    """Airflow's CLI from its venv, with a private AIRFLOW_HOME and the DAGs of orchestrate/."""

    bin: Path
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
        done = subprocess.run(
            [str(self.bin / "airflow"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            pytest.fail(
                f"airflow {' '.join(args)} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-8000:]}\n--- stderr\n{done.stderr[-8000:]}"
            )
        return done.stdout

    def python(self, code: str, env: dict[str, str] | None = None) -> Any:
        """Run ``code`` in Airflow's venv; the JSON of its last stdout line."""
        done = subprocess.run(
            [str(self.bin / "python"), "-c", code],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-6000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Airflow:
    """Airflow installed, its metadata DB migrated, and the shards' pools imported."""
    subprocess.run([str(ROOT / "scripts" / "airflow-venv.sh")], check=True, cwd=ROOT)
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    af = Airflow(ROOT / ".airflow-venv" / "bin", env)
    af.run("db", "migrate")
    pools = home / "pools.json"
    pools.write_text(
        subprocess.run(
            [sys.executable, str(PROJECT / "dags" / "looker_shards.py"), "pools"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    af.run("pools", "import", str(pools))
    return af


# Parses the DAGs folder as Airflow 3's DAG processor does: a bundle, on sys.path.
DAG_SHAPE = """
import importlib.util
import json
from airflow.configuration import conf
from airflow.models.dagbag import BundleDagBag
folder = conf.get("core", "dags_folder")
bag = BundleDagBag(dag_folder=folder, bundle_path=folder)
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {
            "schedule": str(dag.timetable.summary),
            "max_active_runs": dag.max_active_runs,
            "tasks": {
                t.task_id: {
                    "pool": t.pool, "pool_slots": t.pool_slots, "retries": t.retries,
                    "trigger_rule": t.trigger_rule.value,
                    "downstream": sorted(t.downstream_task_ids),
                }
                for t in dag.tasks
            },
        }
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def test_dag_imports_with_a_task_per_shard_in_its_api_users_pool(airflow, tmp_path):
    shape = airflow.python(DAG_SHAPE)
    assert shape["errors"] == {}
    dag = shape["dags"][DAG_ID]
    assert dag["max_active_runs"] == 1
    assert dag["schedule"] == "0 0 * * *", "the Meltano schedule's @daily"
    tasks = dag["tasks"]
    assert set(tasks) == {*SHARDS, "notify"}
    for task_id, (_, pool, slots) in SHARDS.items():
        assert (tasks[task_id]["pool"], tasks[task_id]["pool_slots"]) == (pool, slots)
        assert tasks[task_id]["retries"] >= 1, "a retry resumes from Meltano's state"
        assert tasks[task_id]["downstream"] == ["notify"]
    assert tasks["notify"]["trigger_rule"] == "all_done", "successful shards are notified"
    pools = {
        p["pool"]: int(p["slots"])
        for p in json.loads(airflow.run("pools", "list", "--output", "json"))
    }
    assert pools["tap-looker-query--main"] == pools["tap-looker-query--emea"] == 15
    assert sum(s for _, p, s in SHARDS.values() if p == "tap-looker-query--main") <= 15

    # A shard that asks for more than its pool holds breaks the DAG's import, with the reason.
    (tmp_path / "meltano.yml").write_text(
        (PROJECT / "meltano.yml")
        .read_text(encoding="utf-8")
        .replace("max_concurrent_queries: 8", "max_concurrent_queries: 16"),
        encoding="utf-8",
    )
    broken = airflow.python(DAG_SHAPE, env={"LOOKER_QUERY_MELTANO_PROJECT": str(tmp_path)})
    assert DAG_ID not in broken["dags"]
    (error,) = broken["errors"].values()
    assert (
        "shard 'tap-looker-query--main--orders' asks for 16 concurrent queries, but the pool of "
        "Looker API user 'tap-looker-query--main' holds 15" in error
    )


@pytest.fixture
def pubsub(tmp_path: Path) -> Iterator[services.Service]:
    svc = pubsub_emulator.start(tmp_path)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def two_lookers(_looker_master_db: None) -> Iterator[tuple[LookerEmulator, LookerEmulator]]:
    main = LookerEmulator(client_id="main-client", client_secret="main-secret").start()
    emea = LookerEmulator(client_id="emea-client", client_secret="emea-secret").start()
    try:
        yield main, emea
    finally:
        main.stop()
        emea.stop()


def _by_shard(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    assert all(m["attributes"]["shard"] == m["data"]["shard"] for m in messages)
    by_shard = {m["data"]["shard"]: m["data"] for m in messages}
    assert len(by_shard) == len(messages), "one message per load"
    return by_shard


@pytest.fixture(scope="module")
def meltano_sys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``meltano install`` of orchestrate/'s plugins into a temp system dir, once per module."""
    sys_dir = tmp_path_factory.mktemp("orchestrate-meltano")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)}
    env |= {"MELTANO_SYS_DIR_ROOT": str(sys_dir), "MELTANO_HUB_URL": "http://127.0.0.1:9/"}
    meltano = [str(MELTANO), "install"]
    subprocess.run(meltano, cwd=PROJECT, env=env, check=True, timeout=600, capture_output=True)
    return sys_dir


def test_dag_loads_every_shard_notifies_pubsub_and_runs_incrementally(
    airflow, two_lookers, pubsub, meltano_sys, tmp_path
):
    main, emea = two_lookers
    topic = pubsub_emulator.create_topic_and_subscription(pubsub, "looker-loads", "test-sub")
    output, state = tmp_path / "output", tmp_path / "state"
    env = {
        "LOOKER_QUERY_MELTANO": str(MELTANO),
        "LOOKER_QUERY_PUBSUB_TOPIC": topic,
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub.port}",
        "MELTANO_SYS_DIR_ROOT": str(meltano_sys),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_STATE_BACKEND_URI": f"file://{state}",
        "MELTANO_HUB_URL": "http://127.0.0.1:9/",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TARGET_JSONL_DESTINATION_PATH": str(output),
        **services.GOOGLE_OFFLINE_ENV,
        **looker_env(main, prefix="TAP_LOOKER_QUERY__MAIN", start_date=HISTORY_START),
        **looker_env(emea, prefix="TAP_LOOKER_QUERY__EMEA", start_date=HISTORY_START),
        "TAP_LOOKER_QUERY__MAIN__ORDERS_START_DATE": ORDERS_START,
    }
    output.mkdir()

    airflow.run("dags", "test", DAG_ID, env=env)

    want = {
        "query_history": rows_since(
            main, "system__activity", "history", MAIN_HISTORY, "history.created_time", HISTORY_START
        ),
        "order_items": rows_since(
            main, "thelook", "order_items", ORDERS, "order_items.created_time", ORDERS_START
        ),
        "emea_query_history": rows_since(
            emea, "system__activity", "history", EMEA_HISTORY, "history.created_time", HISTORY_START
        ),
    }
    for stream, rows in want.items():
        assert rows, stream
        assert_records_match(read_jsonl(output / f"{stream}.jsonl"), rows, (KEYS[stream][0],))
    for emu in (main, emea):  # each instance was asked with its own API user only
        logins = [r for r in emu.requests if r.path.endswith("/login")]
        assert logins
        assert all(emu.client_id in str(r) for r in logins)

    # State per shard: one state ID each, holding only its own streams.
    streams = {
        "tap-looker-query--main--history": "query_history",
        "tap-looker-query--main--orders": "order_items",
        "tap-looker-query--emea--history": "emea_query_history",
    }
    first = {}
    for shard, stream in streams.items():
        saved = json.loads((state / f"prod:{shard}-to-target-jsonl" / "state.json").read_text())
        bookmarks = saved["completed"]["singer_state"]["bookmarks"]
        assert set(bookmarks) == {stream}
        first[stream] = bookmarks[stream]["replication_key_value"]
        assert first[stream] == max(r[KEYS[stream][1]] for r in want[stream])

    # One Pub/Sub message per load, naming pipeline, streams, rows, bookmark and destination.
    notices = _by_shard(pubsub_emulator.pull(pubsub, "test-sub", len(SHARDS)))
    assert set(notices) == set(streams)
    for shard, stream in streams.items():
        n = notices[shard]
        assert n["pipeline"] == DAG_ID
        assert n["state_id"] == f"prod:{shard}-to-target-jsonl"
        assert n["destination"] == {"loader": "target-jsonl", "destination_path": str(output)}
        assert n["streams"] == {
            stream: {
                "rows": len(want[stream]),
                "bookmark": first[stream],
                "previous_bookmark": None,
            }
        }

    # Second run: incremental from each shard's state.
    main.insert_rows("system__activity", "history", NEW_HISTORY)
    for f in output.iterdir():
        f.unlink()
    airflow.run("dags", "test", DAG_ID, env=env)

    again = read_jsonl(output / "query_history.jsonl")
    new_ids = {r["history.id"] for r in NEW_HISTORY}
    # The bookmark is inclusive: rows of its second come again (for the loader to upsert).
    assert {
        r["history_id"] for r in again if r["history_created_time"] > first["query_history"]
    } == new_ids
    assert all(r["history_created_time"] >= first["query_history"] for r in again)
    notices = _by_shard(pubsub_emulator.pull(pubsub, "test-sub", len(SHARDS)))
    history = notices["tap-looker-query--main--history"]["streams"]["query_history"]
    assert history == {
        "rows": len(again),
        "bookmark": "2026-11-02T02:00:00+00:00",
        "previous_bookmark": first["query_history"],
    }
    for shard in ("tap-looker-query--main--orders", "tap-looker-query--emea--history"):
        (n,) = notices[shard]["streams"].values()
        assert n["bookmark"] == n["previous_bookmark"]
        assert n["rows"] < 10, "only the rows of the bookmark's second again"


def _load_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, PROJECT / "dags" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_shard_retry_resumes_from_the_state_its_loader_confirmed(
    looker_emulator, meltano_sys, tmp_path
):
    """What a shard task's Airflow retry runs: the same ``run_shard``, after a failed one."""
    shards, loads = _load_module("looker_shards"), _load_module("looker_loads")
    (deployment,) = shards.load(PROJECT)
    shard = next(s for s in deployment.shards if s.extractor.endswith("--main--orders"))
    output = tmp_path / "output"
    output.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(_LEAKY)},
        "MELTANO_SYS_DIR_ROOT": str(meltano_sys),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_HUB_URL": "http://127.0.0.1:9/",
        "TARGET_JSONL_DESTINATION_PATH": str(output),
        **looker_env(looker_emulator, prefix="TAP_LOOKER_QUERY__MAIN"),
        "TAP_LOOKER_QUERY__MAIN__ORDERS_START_DATE": "2025-01-01T00:00:00Z",
    }
    run = {"meltano": str(MELTANO), "project_dir": PROJECT, "env": env}
    # 30-day windows from 2025-01: a query fails in Looker. The shard runs 8 windows' queries at
    # once, so the 10th query is sent only after the first window's rows were emitted.
    looker_emulator.faults.looker_error_on_query(10)
    with pytest.raises(loads.LoadError, match="exited 1"):
        loads.run_shard(deployment, shard, **run)
    first = read_jsonl(output / "order_items.jsonl")
    (output / "order_items.jsonl").unlink()

    retry = loads.run_shard(deployment, shard, **run)["streams"]["order_items"]
    resumed_at = retry["previous_bookmark"]
    assert resumed_at == max(r["order_items_created_time"] for r in first)
    again = read_jsonl(output / "order_items.jsonl")
    assert min(r["order_items_created_time"] for r in again) == resumed_at
    want = rows_since(
        looker_emulator, "thelook", "order_items", ORDERS, "order_items.created_time", "2025-01-01"
    )
    assert_records_match(
        list({r["order_items_id"]: r for r in first + again}.values()), want, ("order_items_id",)
    )
    assert retry["rows"] == len(again) < len(want)
