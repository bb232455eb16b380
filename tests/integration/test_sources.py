"""Every query source: Looks, dashboard tiles, saved queries, and System Activity presets."""

from __future__ import annotations

import logging

import pytest
import requests

from tap_looker_query.specs.presets import PRESETS
from tap_looker_query.system_activity import CLIENT_ID_PREFIX
from tap_looker_query.tap import TapLookerQuery
from tests.helpers import config_for, run_tap, run_tap_process

SINCE = "2026-10-20T00:00:00+00:00"
LOOK_FIELDS = [
    "history.id",
    "history.created_time",
    "history.status",
    "history.source",
    "query.model",
    "user.id",
    "history.runtime",
]


def config(emulator, *specs, **settings):
    return config_for(emulator, *specs, **{"start_date": SINCE, **settings})


def runs(emulator, fmt="json"):
    return [r.body for r in emulator.requests if r.path == f"/api/4.0/queries/run/{fmt}"]


def look_rows(emulator, since, until="2027-01-01 00:00:00"):
    return emulator.query_rows(
        "system__activity",
        "history",
        LOOK_FIELDS,
        filters={"history.source": "-suggest", "history.created_time": f"{since} to {until}"},
        limit="-1",
    )


def test_an_incremental_look_across_two_runs(looker_emulator):
    spec = {
        "name": "history_look",
        "look_id": 1,
        "metadata": {"datetime": "history.created_time", "primary_keys": ["history.id"]},
    }
    first = run_tap(config(looker_emulator, spec))
    ids = {r["history_id"] for r in first.records("history_look")}
    assert ids == {row["history.id"] for row in look_rows(looker_emulator, "2026-10-20 00:00:00")}
    body = runs(looker_emulator)[0]
    assert body["filters"]["history.source"] == "-suggest"  # the Look's own filter stays
    assert " to " in body["filters"]["history.created_time"]  # the window is merged in
    looker_emulator.insert_rows(
        "system__activity",
        "history",
        [
            {
                "history.id": 990001,
                "history.created_time": "2026-11-20 10:00:00",
                "history.source": "api4",
            },
            {
                "history.id": 990002,
                "history.created_time": "2026-11-20 11:00:00",
                "history.source": "suggest",
            },
        ],
    )
    second = run_tap(config(looker_emulator, spec), state=first.last_state)
    new = {r["history_id"] for r in second.records("history_look")} - ids
    assert new == {990001}
    assert second.bookmark("history_look") == "2026-11-20T10:00:00+00:00"


def test_a_look_with_overrides(looker_emulator):
    spec = {"name": "sales", "look_id": "2", "limit": 3}
    run = run_tap(config(looker_emulator, spec))
    assert len(run.records("sales")) == 3
    [body] = runs(looker_emulator)
    assert body["model"] == "thelook"
    assert body["limit"] == "3"
    assert body["filters"] == {"order_items.created_date": "2025-01-01 to 2025-04-01"}


def test_a_look_field_that_does_not_exist_names_the_look(looker_emulator):
    spec = {"name": "broken", "look_id": 1, "fields": ["history.id", "history.nope"]}
    run = run_tap_process(config(looker_emulator, spec))
    assert run.exit_code != 0
    assert "query 'broken' (Look 1): field 'history.nope' is not in explore" in run.stderr


def test_a_missing_look_is_a_clear_error(looker_emulator):
    run = run_tap_process(config(looker_emulator, {"name": "gone", "look_id": 999}))
    assert run.exit_code != 0
    assert "query 'gone': Look 999 does not exist, or the API user cannot see it" in run.stderr


def test_dashboard_tiles_become_streams_with_the_dashboards_filters(looker_emulator, caplog):
    with caplog.at_level(logging.WARNING):
        run = run_tap(config(looker_emulator, {"name": "usage", "dashboard_id": 1}))
    streams = {m["stream"] for m in run.messages if m["type"] == "SCHEMA"}
    assert streams == {
        "usage_runs_by_day",
        "usage_history_look",
        "usage_revenue_by_category",
        "usage_merged_runs_vs_revenue",
    }
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "a text tile, skipped" in warnings
    # The merged tile's primary query (the same query, listening to no filter) runs first.
    merged, by_day = [b for b in runs(looker_emulator) if "history.count" in b["fields"]]
    assert "history.source" not in (merged["filters"] or {})
    assert by_day["filters"]["history.created_date"] == "after 2026-10-01"
    assert by_day["filters"]["history.source"] == "api4,dashboard"
    assert run.records("usage_runs_by_day")
    assert all(isinstance(r["history_count"], int) for r in run.records("usage_runs_by_day"))
    assert run.records("usage_revenue_by_category")


def saved_query(emulator):
    session = requests.Session()
    token = session.post(
        f"{emulator.base_url}/api/4.0/login",
        data={"client_id": emulator.client_id, "client_secret": emulator.client_secret},
    ).json()["access_token"]
    look = session.get(
        f"{emulator.base_url}/api/4.0/looks/2", headers={"Authorization": f"token {token}"}
    ).json()
    return look["query"]


@pytest.mark.parametrize("key", ["query_id", "query_slug"])
def test_saved_queries_by_id_and_slug(looker_emulator, key):
    query = saved_query(looker_emulator)
    ref = query["id"] if key == "query_id" else query["slug"]
    run = run_tap(config(looker_emulator, {"name": "saved", key: ref}))
    records = run.records("saved")
    expected = looker_emulator.query_rows(
        query["model"],
        query["view"],
        query["fields"],
        filters=query["filters"],
        limit=query["limit"],
    )
    assert len(records) == len(expected) > 0


def test_each_preset_is_discovered_with_lookers_types(looker_emulator):
    specs = [{"name": f"sa_{name}", "preset": name} for name in PRESETS]
    tap = TapLookerQuery(config=config(looker_emulator, *specs), parse_env_config=False)
    catalog = {entry["tap_stream_id"]: entry for entry in tap.catalog_dict["streams"]}
    assert set(catalog) == {f"sa_{name}" for name in PRESETS}
    history = catalog["sa_history"]
    props = history["schema"]["properties"]
    assert props["history_created_time"]["format"] == "date-time"
    assert props["history_id"]["type"] == ["number", "null"]
    assert props["history_is_single_query"]["type"] == ["boolean", "null"]
    assert history["key_properties"] == ["history_id"]
    assert history["replication_key"] == "history_created_time"
    assert catalog["sa_content_usage"]["replication_key"] == "content_usage_last_accessed_time"
    assert catalog["sa_user"].get("replication_key") is None
    assert catalog["sa_user"]["schema"]["properties"]["user_is_looker"]["type"] == [
        "boolean",
        "null",
    ]
    tap.close()


def test_a_preset_can_be_overridden_key_by_key(looker_emulator):
    spec = {
        "name": "history",
        "preset": "history",
        "fields": ["history.id", "history.created_time", "history.status"],
        "metadata": {"window_hours": 12},
    }
    run = run_tap(config(looker_emulator, spec, start_date="2026-10-30T00:00:00Z"))
    assert set(run.records("history")[0]) == {
        "history_id",
        "history_created_time",
        "history_status",
    }
    assert run.schema("history")["key_properties"] == ["history_id"]  # kept from the preset
    first = min(body["filters"]["history.created_time"] for body in runs(looker_emulator))
    assert first == "2026-10-30 00:00:00 to 2026-10-30 12:00:00"


def test_history_retention_warning(looker_emulator, caplog):
    with caplog.at_level(logging.WARNING):
        run_tap(
            config(
                looker_emulator,
                {"name": "h", "preset": "history"},
                start_date="2026-07-04T00:00:00Z",
            )
        )
    assert any(
        "keeps System Activity History for 90 days" in r.getMessage() for r in caplog.records
    )


def test_the_taps_own_queries_are_tagged_and_can_be_left_out(looker_emulator):
    own = f"{CLIENT_ID_PREFIX}AbCd1234"
    looker_emulator.insert_rows(
        "system__activity",
        "query",
        [{"query.id": 880001, "query.client_id": own, "query.model": "system__activity"}],
    )
    looker_emulator.insert_rows(
        "system__activity",
        "history",
        [
            {
                "history.id": 880002,
                "history.created_time": "2026-11-20 09:00:00",
                "history.query_id": 880001,
            }
        ],
    )
    spec = {"name": "history", "preset": "history"}
    kept = run_tap(config(looker_emulator, spec, start_date="2026-11-19T00:00:00Z"))
    assert {r["history_id"] for r in kept.records("history")} == {880002}
    assert all(body["client_id"].startswith(CLIENT_ID_PREFIX) for body in runs(looker_emulator))
    assert all(len(body["client_id"]) == 22 for body in runs(looker_emulator))
    dropped = run_tap(
        config(looker_emulator, spec, start_date="2026-11-19T00:00:00Z", exclude_own_queries=True)
    )
    assert not dropped.records("history")
    assert runs(looker_emulator)[-1]["filters"]["query.client_id"] == f"-{CLIENT_ID_PREFIX}%"


def test_a_tile_that_changed_since_discovery_is_reported(looker_emulator):
    spec = {"name": "saved", "look_id": 2}
    tap = TapLookerQuery(config=config(looker_emulator, spec), parse_env_config=False)
    catalog = tap.catalog_dict
    tap.close()
    del catalog["streams"][0]["schema"]["properties"]["order_items_count"]
    run = run_tap(config(looker_emulator, spec), catalog=catalog)
    assert run.exit_code == 1
    assert (
        "fields changed since the catalog was discovered (new: order_items_count"
        in run.failures["saved"]
    )


def test_an_explore_looker_will_not_describe_is_typed_from_json_bi(looker_emulator, caplog):
    """System Activity explores built on internal tables answer 404 to lookml_model_explore."""
    looker_emulator.faults.explore_404 = {"system__activity::history"}
    spec = {
        "name": "history",
        "model": "system__activity",
        "explore": "history",
        "fields": [
            "history.id",
            "history.created_time",
            "history.is_single_query",
            "history.runtime",
        ],
        "filters": {"user.is_looker": "No"},
        "metadata": {"datetime": "history.created_time", "primary_keys": ["history.id"]},
    }
    with caplog.at_level(logging.WARNING):
        run = run_tap(config(looker_emulator, spec, start_date="2026-10-30T00:00:00Z"))
    assert any(
        "typing fields from a one-row json_bi query" in r.getMessage() for r in caplog.records
    )
    props = run.schema("history")["schema"]["properties"]
    assert props["history_created_time"]["format"] == "date-time"
    assert props["history_is_single_query"]["type"] == ["boolean", "null"]
    assert props["history_runtime"]["type"] == ["number", "null"]
    assert run.records("history")
    assert all(
        isinstance(r["history_is_single_query"], bool | None) for r in run.records("history")
    )
    [json_bi] = [r for r in looker_emulator.requests if r.path == "/api/4.0/queries/run/json_bi"]
    assert json_bi.body["limit"] == "1"
    assert json_bi.body["filters"] == {"user.is_looker": "No"}
