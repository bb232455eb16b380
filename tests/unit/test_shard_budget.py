"""The Airflow shards' query budget (orchestrate/dags/looker_shards.py), without Airflow.

Looker runs at most 15 queries at once per API user; each shard's task takes
``max_concurrent_queries`` slots of its API user's 15-slot pool. A shard asking for more than the
pool holds would never be scheduled, so loading the shards fails instead.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "orchestrate"
_spec = importlib.util.spec_from_file_location(
    "looker_shards", PROJECT / "dags" / "looker_shards.py"
)
assert _spec is not None and _spec.loader is not None
looker_shards = sys.modules["looker_shards"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(looker_shards)


def _project(tmp_path: Path, edit) -> Path:
    project = yaml.safe_load((PROJECT / "meltano.yml").read_text(encoding="utf-8"))
    edit({p["name"]: p for p in project["plugins"]["extractors"]}, project)
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    return tmp_path


def test_every_shard_fits_its_api_users_pool():
    (deployment,) = looker_shards.load(PROJECT)
    assert deployment.dag_id == "meltano_looker-query"
    assert [(s.extractor, s.pool, s.max_concurrent_queries) for s in deployment.shards] == [
        ("tap-looker-query--main--history", "tap-looker-query--main", 4),
        ("tap-looker-query--main--orders", "tap-looker-query--main", 8),
        ("tap-looker-query--emea--history", "tap-looker-query--emea", 6),
    ]
    for shard in deployment.shards:
        assert 1 <= shard.max_concurrent_queries <= looker_shards.LOOKER_QUERY_SLOTS == 15
    assert {s.state_id("prod") for s in deployment.shards} == {
        "prod:tap-looker-query--main--history-to-target-jsonl",
        "prod:tap-looker-query--main--orders-to-target-jsonl",
        "prod:tap-looker-query--emea--history-to-target-jsonl",
    }
    assert deployment.shards[0].streams == ("query_history",)
    assert deployment.shards[0].budget_env == (
        "TAP_LOOKER_QUERY__MAIN__HISTORY_MAX_CONCURRENT_QUERIES"
    )


def test_a_shard_asking_for_more_than_the_pool_holds_fails(tmp_path):
    def edit(extractors, _):
        extractors["tap-looker-query--main--orders"]["config"]["max_concurrent_queries"] = 16

    with pytest.raises(looker_shards.ShardError) as err:
        looker_shards.load(_project(tmp_path, edit))
    assert str(err.value) == (
        "shard 'tap-looker-query--main--orders' asks for 16 concurrent queries, but the pool of "
        "Looker API user 'tap-looker-query--main' holds 15 (Looker's limit per user): "
        "set max_concurrent_queries to 1..15"
    )


def test_a_shard_must_declare_its_budget_and_be_a_looker_extractor(tmp_path):
    def edit(extractors, project):
        del extractors["tap-looker-query--emea--history"]["config"]["max_concurrent_queries"]
        project["jobs"][0]["tasks"].append("tap-looker-query--main--history target-s3")

    with pytest.raises(looker_shards.ShardError) as err:
        looker_shards.load(_project(tmp_path, edit))
    undeclared, not_a_shard = str(err.value).splitlines()
    assert undeclared == (
        "shard 'tap-looker-query--emea--history': declare config.max_concurrent_queries (1 to "
        "15); its Airflow task takes that many slots of pool 'tap-looker-query--emea'"
    )
    assert not_a_shard == (
        "task 'tap-looker-query--main--history target-s3': a shard is '<extractor> <loader>', "
        "both in plugins"
    )


def test_pools_command_prints_one_15_slot_pool_per_api_user():
    out = subprocess.run(
        [sys.executable, str(PROJECT / "dags" / "looker_shards.py"), "pools"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {name: p["slots"] for name, p in json.loads(out).items()} == {
        "tap-looker-query--main": 15,
        "tap-looker-query--emea": 15,
    }
