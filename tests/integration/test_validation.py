"""Bad input: one clear message per problem, non-zero exit, and no RECORD, before any query."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_tap_process

SECRET = "s3cr3t-Do-Not-Print-9b1f"


def base_config(emulator, *specs, **settings):
    return {
        "base_url": emulator.base_url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "start_date": "2026-10-30T00:00:00Z",
        "queries": list(specs),
        **settings,
    }


def history(**overrides):
    spec = {
        "name": "query_history",
        "model": "system__activity",
        "explore": "history",
        "fields": ["history.id", "history.created_time"],
        "metadata": {"datetime": "history.created_time"},
    }
    spec.update(overrides)
    return spec


def assert_rejected(run, *messages):
    assert run.exit_code != 0
    assert not run.all_records
    for message in messages:
        assert message in run.stderr, run.stderr[-3000:]


def no_query_ran(emulator):
    return not [r for r in emulator.requests if "/queries/run/" in r.path]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            history(fields=["history.id", "history.creatd_time"], metadata={}),
            (
                "query 'query_history': field 'history.creatd_time' is not in explore "
                "system__activity::history; did you mean 'history.created_time'?"
            ),
        ),
        (
            history(model="system_activity"),
            "unknown model 'system_activity'; did you mean 'system__activity'?",
        ),
        (
            history(explore="histroy"),
            "model 'system__activity' has no explore 'histroy'; did you mean 'history'?",
        ),
        (
            history(
                fields=["history.id", "history.created_month"],
                metadata={"datetime": "history.created_month"},
            ),
            "not a time field",
        ),
        (history(filters={"history.workspace_id": "x"}), "filter on 'history.workspace_id'"),
    ],
)
def test_specs_that_do_not_match_looker(looker_emulator, spec, message):
    run = run_tap_process(base_config(looker_emulator, spec))
    assert_rejected(run, message)
    assert no_query_ran(looker_emulator)


@pytest.mark.parametrize(
    ("specs", "messages"),
    [
        ([history(), history()], ["duplicate stream name"]),
        ([history(name="Query History")], ["key 'name' must match ^[a-z][a-z0-9_]*$"]),
        (
            [{"name": "x", "model": "m"}],
            [
                "query 'x': missing required key 'explore'",
                "query 'x': missing required key 'fields'",
            ],
        ),
        ([history(limit="ten")], ["key 'limit' must be a positive whole number or -1"]),
        (
            [history(metadata={"datetime": "history.created_time", "default_days": "4 days"})],
            ["'metadata.default_days'"],
        ),
        (
            [history(metadata={"result_format": "xlsx"})],
            ["'metadata.result_format' must be 'json' or 'csv'"],
        ),
        (
            [history(metadata={"datetime": "history.completed_time"})],
            ["which is not among 'fields'"],
        ),
        ([history(metadata={"primary_keys": ["history.idd"]})], ["did you mean 'history.id'?"]),
        (
            [
                history(fields=["history.id", "history_id.x"]),
            ],
            [],
        ),
    ],
)
def test_spec_problems_each_get_a_message(looker_emulator, specs, messages):
    run = run_tap_process(base_config(looker_emulator, *specs))
    if not messages:  # a control case: this spec is fine structurally, Looker rejects the field
        assert run.exit_code != 0
        return
    assert_rejected(run, *messages)
    assert not looker_emulator.requests  # not even a login: the specs were checked first


def test_queries_or_queries_file_is_required(looker_emulator):
    run = run_tap_process(base_config(looker_emulator))
    assert_rejected(run, "no query specs: set 'queries' or 'queries_file'")


def test_bad_credentials_are_named_and_the_secret_is_never_printed(looker_emulator, tmp_path):
    config = base_config(looker_emulator, history(), client_secret=SECRET)
    run = run_tap_process(config)
    assert_rejected(run, "Looker refused the API credentials")
    assert SECRET not in run.stderr


def test_secret_never_appears_in_logs_catalog_or_state(looker_emulator):
    config = base_config(looker_emulator, history())
    secret = config["client_secret"]
    discover = run_tap_process(config, "--discover")
    assert discover.exit_code == 0, discover.stderr[-2000:]
    assert "query_history" in json.loads(discover.stdout)["streams"][0]["tap_stream_id"]
    check = run_tap_process(config, "--test")
    assert check.exit_code == 0, check.stderr[-2000:]
    full = run_tap_process(config)
    assert full.exit_code == 0, full.stderr[-2000:]
    assert full.all_records
    for run in (discover, check, full):
        assert secret not in run.stderr
        assert secret not in run.stdout


def test_discover_and_test_mode(looker_emulator):
    config = base_config(looker_emulator, history())
    run = run_tap_process(config, "--test")
    assert run.exit_code == 0, run.stderr[-2000:]
    assert "query_history: OK" in run.stderr
    assert not run.all_records
    assert no_query_ran(looker_emulator)


def test_credentials_fall_back_to_lookersdk_variables_and_config_env_works(looker_emulator):
    spec = history()
    env = {
        "LOOKERSDK_BASE_URL": looker_emulator.base_url,
        "LOOKERSDK_CLIENT_ID": looker_emulator.client_id,
        "LOOKERSDK_CLIENT_SECRET": looker_emulator.client_secret,
        "TAP_LOOKER_QUERY_QUERIES": json.dumps([spec]),
        "TAP_LOOKER_QUERY_START_DATE": "2026-10-31T00:00:00Z",
        "TAP_LOOKER_QUERY_MAX_CONCURRENT_QUERIES": "2",
    }
    run = run_tap_process({}, "--config", "ENV", env=env)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert run.records("query_history")
    assert all(r["history_created_time"] >= "2026-10-31" for r in run.records("query_history"))


def test_missing_credentials_are_named(looker_emulator):
    config = base_config(looker_emulator, history())
    del config["client_id"]
    run = run_tap_process(config, env={"LOOKERSDK_CLIENT_ID": ""})
    assert_rejected(
        run, "setting 'client_id' is required: set it in the config or as LOOKERSDK_CLIENT_ID"
    )
