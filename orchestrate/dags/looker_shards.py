"""The Looker shards of a Meltano project, read from its ``meltano.yml``, and their query budget.

A Meltano schedule names a job; each ``<extractor> <loader>`` task of that job is one shard. A
shard's extractor inherits (directly or through others) from a *Looker instance*: the extractor
right below ``tap-looker-query``, which holds one Looker API user. Looker runs at most 15 queries
at once per API user, so each instance is an Airflow pool of 15 slots and each shard's task takes
``max_concurrent_queries`` of them: parallel shards then never exceed the limit.

No Airflow import here: the budget check and ``python looker_shards.py pools`` (the pools to create)
run anywhere. See docs/DEPLOY.md.
"""

# ruff: noqa: INP001 - lives in Airflow's dags folder, which is on sys.path, not a package
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BASE_EXTRACTOR = "tap-looker-query"
# Looker's limit of queries running at once per API user; a larger pool would not help.
LOOKER_QUERY_SLOTS = 15
DEFAULT_PROJECT = Path(__file__).resolve().parent.parent


class ShardError(ValueError):
    """The project's shards break a rule; the message lists every problem, one per line."""


@dataclass(frozen=True)
class Shard:
    """One ``meltano run <extractor> <loader>``: its own extractor, state ID and query budget."""

    extractor: str
    loader: str
    api_user: str
    max_concurrent_queries: int
    streams: tuple[str, ...]

    @property
    def task_id(self) -> str:
        """The Airflow task: the extractor without the common prefix, e.g. ``main--history``."""
        return self.extractor.removeprefix(f"{BASE_EXTRACTOR}--")

    @property
    def pool(self) -> str:
        """The Airflow pool of the shard's Looker API user (its instance extractor's name)."""
        return self.api_user

    @property
    def budget_env(self) -> str:
        """The env var that makes the tap honour the budget, whatever else configures it."""
        return f"{_env_prefix(self.extractor)}_MAX_CONCURRENT_QUERIES"

    def state_id(self, environment: str) -> str:
        """Meltano's state ID of this shard (the same under Airflow and ``meltano run <job>``)."""
        return f"{environment}:{self.extractor}-to-{self.loader}"


@dataclass(frozen=True)
class Deployment:
    """A Meltano schedule: its job's shards, run by one Airflow DAG."""

    schedule: str
    interval: str | None
    job: str
    environment: str
    shards: tuple[Shard, ...]

    @property
    def dag_id(self) -> str:
        """Named as Meltano's own Airflow DAG generator names schedule DAGs."""
        return f"meltano_{self.schedule}"


def _env_prefix(plugin: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", plugin).upper()


def _streams(select: list[str]) -> tuple[str, ...]:
    """Stream names of the ``select`` rules (``query_history.*`` -> ``query_history``)."""
    return tuple(
        dict.fromkeys(
            re.split(r"(?<!\\)\.", rule, maxsplit=1)[0].replace("\\.", ".")
            for rule in select
            if not rule.startswith("!")
        )
    )


def _resolve(
    task: str, extractors: dict[str, dict[str, Any]], loaders: set[str]
) -> tuple[Shard | None, list[str]]:
    names = task.split()
    if len(names) != 2 or names[0] not in extractors or names[1] not in loaders:  # noqa: PLR2004
        return None, [f"task '{task}': a shard is '<extractor> <loader>', both in plugins"]
    extractor, loader = names
    chain = [extractors[extractor]]
    while chain[-1].get("inherit_from") not in (None, BASE_EXTRACTOR):
        parent = chain[-1]["inherit_from"]
        if parent not in extractors or len(chain) > len(extractors):
            return None, [f"shard '{extractor}': inherit_from '{parent}' is not an extractor"]
        chain.append(extractors[parent])
    if chain[-1].get("inherit_from") != BASE_EXTRACTOR:
        return None, [f"shard '{extractor}' does not inherit from {BASE_EXTRACTOR}"]
    budget = next(
        (
            p["config"]["max_concurrent_queries"]
            for p in chain
            if "max_concurrent_queries" in (p.get("config") or {})
        ),
        None,
    )
    api_user = chain[-1]["name"]
    if budget is None:
        msg = (
            f"shard '{extractor}': declare config.max_concurrent_queries (1 to "
            f"{LOOKER_QUERY_SLOTS}); its Airflow task takes that many slots of pool '{api_user}'"
        )
        return None, [msg]
    if (
        isinstance(budget, bool)
        or not isinstance(budget, int)
        or not 1 <= budget <= LOOKER_QUERY_SLOTS
    ):
        msg = (
            f"shard '{extractor}' asks for {budget!r} concurrent queries, but the pool of Looker "
            f"API user '{api_user}' holds {LOOKER_QUERY_SLOTS} (Looker's limit per user): "
            f"set max_concurrent_queries to 1..{LOOKER_QUERY_SLOTS}"
        )
        return None, [msg]
    select = next((p["select"] for p in chain if p.get("select")), ["*.*"])
    return Shard(extractor, loader, api_user, budget, _streams(select)), []


def load(project_dir: Path = DEFAULT_PROJECT) -> list[Deployment]:
    """Every schedule of ``project_dir/meltano.yml`` that runs a job; raises :class:`ShardError`."""
    project = yaml.safe_load((project_dir / "meltano.yml").read_text(encoding="utf-8"))
    plugins = project.get("plugins", {})
    extractors = {p["name"]: p for p in plugins.get("extractors", [])}
    loaders = {p["name"] for p in plugins.get("loaders", [])}
    jobs = {j["name"]: j["tasks"] for j in project.get("jobs", [])}
    environment = os.environ.get("MELTANO_ENVIRONMENT") or project.get("default_environment", "dev")
    deployments, problems = [], []
    for schedule in project.get("schedules", []):
        if "job" not in schedule:
            continue  # an `elt` schedule: not ours to run
        if schedule["job"] not in jobs:
            problems.append(f"schedule '{schedule['name']}': no job '{schedule['job']}'")
            continue
        shards = []
        for task in jobs[schedule["job"]]:
            shard, errors = _resolve(
                " ".join(task) if isinstance(task, list) else task, extractors, loaders
            )
            problems += errors
            if shard:
                shards.append(shard)
        interval = schedule.get("interval")
        deployments.append(
            Deployment(
                schedule["name"],
                None if interval in (None, "@manual") else interval,
                schedule["job"],
                environment,
                tuple(shards),
            )
        )
    if problems:
        raise ShardError("\n".join(problems))
    return deployments


def pools(deployments: list[Deployment]) -> dict[str, dict[str, Any]]:
    """The Airflow pools the shards use, in ``airflow pools import`` format."""
    return {
        shard.pool: {
            "slots": LOOKER_QUERY_SLOTS,
            "description": f"Looker API user of {shard.pool}: at most {LOOKER_QUERY_SLOTS} "
            "queries at once",
            "include_deferred": False,
        }
        for d in deployments
        for shard in d.shards
    }


def main(argv: list[str]) -> int:
    """``pools [PROJECT_DIR]``: print the pools JSON; ``check [PROJECT_DIR]``: list the shards."""
    command, project_dir = argv[0], Path(argv[1]) if len(argv) > 1 else DEFAULT_PROJECT
    try:
        deployments = load(project_dir)
    except ShardError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if command == "pools":
        sys.stdout.write(json.dumps(pools(deployments), indent=2) + "\n")
    else:
        for d in deployments:
            for s in d.shards:
                sys.stdout.write(
                    f"{d.dag_id}: {s.task_id} = meltano run {s.extractor} {s.loader}; "
                    f"pool {s.pool}, {s.max_concurrent_queries}/{LOOKER_QUERY_SLOTS} slots\n"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["check"]))
