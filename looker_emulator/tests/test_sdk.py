"""Conformance: the real looker-sdk drives the emulator over HTTP."""

from __future__ import annotations

import csv
import io
import json
import time

import looker_sdk
import pytest
import requests
from looker_sdk import error as sdk_error
from looker_sdk import models40 as m
from looker_sdk.rtl import api_settings

from looker_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator

HISTORY_QUERY = {
    "model": "system__activity",
    "view": "history",
    "fields": [
        "history.id",
        "history.created_time",
        "query.model",
        "user.name",
        "history.is_single_query",
    ],
    "filters": {"history.created_time": "2026-10-05 00:00:00 to 2026-10-06 00:00:00"},
    "sorts": ["history.created_time", "history.id"],
    "limit": "50",
    "query_timezone": "UTC",
}


def make_sdk(
    emu: LookerEmulator,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
):
    """A looker-sdk 4.0 client configured in code (the pattern the tap uses)."""

    class Settings(api_settings.ApiSettings):
        def read_config(self):
            return {
                "base_url": emu.base_url,
                "client_id": client_id,
                "client_secret": client_secret,
                "verify_ssl": "false",
                "timeout": "30",
            }

    return looker_sdk.init40(config_settings=Settings(env_prefix=None))


@pytest.fixture
def sdk(looker_emulator_session: LookerEmulator):
    return make_sdk(looker_emulator_session)


def test_login_and_me(sdk, looker_emulator_session) -> None:
    me = sdk.me()
    assert me.id == "1"
    assert me.display_name == "API Emulator"
    assert sdk.auth.token.expires_in == 3600
    assert sdk.versions().looker_release_version


def test_bad_credentials_answer_404_not_found(looker_emulator_session) -> None:
    bad = make_sdk(looker_emulator_session, client_secret="wrong")
    with pytest.raises(sdk_error.SDKError) as exc:
        bad.me()
    # The SDK's login path raises with the raw body as message.
    body = json.loads(exc.value.message)
    assert body["message"] == "Not found"
    assert body["documentation_url"].endswith("/404/post/login")


def test_login_accepts_query_string_and_both_auth_schemes(looker_emulator_session) -> None:
    base = looker_emulator_session.base_url + "/api/4.0"
    r = requests.post(
        f"{base}/login",
        params={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "Bearer"
    for scheme in ("token", "Bearer"):
        assert (
            requests.get(
                f"{base}/user", headers={"Authorization": f"{scheme} {token}"}, timeout=10
            ).status_code
            == 200
        )
    assert requests.get(f"{base}/user", timeout=10).status_code == 401
    assert (
        requests.get(
            f"{base}/user", headers={"Authorization": "Bearer nope"}, timeout=10
        ).status_code
        == 401
    )


def test_logout_paths(looker_emulator) -> None:
    sdk = make_sdk(looker_emulator)
    sdk.me()
    sdk.auth.logout()  # DELETE /api/logout
    sdk2 = make_sdk(looker_emulator)
    sdk2.me()
    sdk2.logout()  # DELETE /api/4.0/logout
    paths = [(r.method, r.path, r.status) for r in looker_emulator.requests if r.method == "DELETE"]
    assert ("DELETE", "/api/logout", 204) in paths
    assert ("DELETE", "/api/4.0/logout", 204) in paths


def test_models_and_internal_flag(sdk) -> None:
    assert "system__activity" not in [x.name for x in sdk.all_lookml_models()]
    names = [x.name for x in sdk.all_lookml_models(include_internal=True)]
    assert {"system__activity", "thelook", "synthetic"} <= set(names)
    model = sdk.lookml_model("system__activity")
    assert {"history", "query", "user", "event", "event_attribute", "content_usage"} <= {
        e.name for e in model.explores
    }


def test_explore_metadata(sdk) -> None:
    e = sdk.lookml_model_explore("system__activity", "history")
    dims = {d.name: d for d in e.fields.dimensions}
    ct = dims["history.created_time"]
    assert (ct.type, ct.is_timeframe, ct.dimension_group, ct.time_interval.name.value) == (
        "date_time",
        True,
        "history.created",
        "second",
    )
    assert ct.label_short == "Created Time"
    assert dims["history.id"].primary_key
    assert dims["history.id"].is_numeric
    assert dims["history.is_single_query"].type == "yesno"
    assert dims["query.model"].view == "query"
    assert dims["user.is_looker"].type == "yesno"
    assert {x.name for x in e.fields.measures} >= {"history.count", "history.average_runtime"}
    with pytest.raises(sdk_error.SDKError, match="Not found"):
        sdk.lookml_model_explore("system__activity", "nope")
    with pytest.raises(sdk_error.SDKError, match="Not found"):
        sdk.lookml_model_explore("nope", "history")


def test_explore_fields_parameter(sdk) -> None:
    e = sdk.lookml_model_explore(
        "thelook", "order_items", fields="name,fields(dimensions(name,type),measures(name,type))"
    )
    assert e.name == "order_items"
    assert e.label is None
    assert e.fields.dimensions[0].label is None
    assert e.fields.dimensions[0].type
    assert e.fields.filters is None


@pytest.mark.parametrize(
    "fmt", ["json", "json_bi", "json_detail", "csv", "txt", "sql", "json_label"]
)
def test_run_inline_each_format(sdk, fmt: str) -> None:
    body = sdk.run_inline_query(
        fmt, m.WriteQuery(**HISTORY_QUERY), apply_formatting=False, cache=False
    )
    assert isinstance(body, str)
    if fmt == "json":
        rows = json.loads(body)
        assert len(rows) == 50
        assert list(rows[0]) == HISTORY_QUERY["fields"]
        assert isinstance(rows[0]["history.id"], int)
        assert rows[0]["history.is_single_query"] in ("Yes", "No")
        assert len(rows[0]["history.created_time"]) == 19
    elif fmt == "json_bi":
        doc = json.loads(body)
        assert [f["name"] for f in doc["metadata"]["fields"]["dimensions"]] == HISTORY_QUERY[
            "fields"
        ]
        assert len(doc["rows"]) == 50
    elif fmt == "json_detail":
        doc = json.loads(body)
        assert doc["data"][0]["history.id"]["value"] > 0
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0] == [
            "History ID",
            "History Created Time",
            "Query Model",
            "User Name",
            "History Is Single Query",
        ]
        assert len(rows) == 51
    elif fmt == "txt":
        assert body.splitlines()[0].split("\t")[0] == "History ID"
    elif fmt == "sql":
        assert body.startswith("SELECT")
    else:
        assert "History ID" in json.loads(body)[0]


def test_csv_content_type_and_streaming_with_requests(looker_emulator_session) -> None:
    base = looker_emulator_session.base_url + "/api/4.0"
    token = requests.post(
        f"{base}/login",
        data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    ).json()["access_token"]
    with requests.post(
        f"{base}/queries/run/csv",
        json=HISTORY_QUERY,
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=10,
    ) as r:
        assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert r.headers["Transfer-Encoding"] == "chunked"
        text = b"".join(r.iter_content(1024)).decode()
    assert text.count("\n") >= 51
    with requests.post(
        f"{base}/queries/run/json",
        json=HISTORY_QUERY,
        headers={"Authorization": f"token {token}"},
        timeout=10,
    ) as r:
        assert r.headers["Content-Type"] == "application/json"
        assert len(r.json()) == 50


def test_create_query_is_idempotent_and_runs(sdk) -> None:
    q1 = sdk.create_query(m.WriteQuery(**HISTORY_QUERY))
    q2 = sdk.create_query(m.WriteQuery(**HISTORY_QUERY))
    assert q1.id == q2.id
    assert isinstance(q1.id, str)
    assert sdk.query(q1.id).fields == HISTORY_QUERY["fields"]
    assert sdk.query_for_slug(q1.slug).id == q1.id
    rows = json.loads(sdk.run_query(q1.id, "json", limit=5))
    assert len(rows) == 5
    other = sdk.create_query(m.WriteQuery(**dict(HISTORY_QUERY, limit="10")))
    assert other.id != q1.id


def test_query_task_to_completion(sdk, looker_emulator_session) -> None:
    q = sdk.create_query(m.WriteQuery(**HISTORY_QUERY))
    task = sdk.create_query_task(
        m.WriteCreateQueryTask(query_id=q.id, result_format=m.ResultFormat.json)
    )
    assert task.status == "added"
    deadline = time.monotonic() + 10
    while sdk.query_task(task.id).status != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rows = json.loads(sdk.query_task_results(task.id))
    assert len(rows) == 50
    multi = sdk.query_task_multi_results(m.DelimSequence([task.id]))
    assert multi[task.id]["status"] == "complete"
    assert len(multi[task.id]["data"]) == 50


def test_look_and_run_look(sdk) -> None:
    look = sdk.look("1")
    assert look.query.model == "system__activity"
    assert look.query_id == look.query.id
    rows = json.loads(sdk.run_look("1", "json", limit=7))
    assert len(rows) == 7
    assert set(rows[0]) == set(look.query.fields)
    with pytest.raises(sdk_error.SDKError, match="Not found"):
        sdk.look("999")


def test_dashboard_and_elements(sdk) -> None:
    d = sdk.dashboard("1")
    assert d.title == "Usage overview"
    assert {f.name: f.default_value for f in d.dashboard_filters}["Source"] == "api4,dashboard"
    els = sdk.dashboard_dashboard_elements("1")
    kinds = {
        (e.type, e.query is not None, e.look is not None, e.merge_result_id is not None)
        for e in els
    }
    assert ("text", False, False, False) in kinds
    assert ("vis", True, False, False) in kinds
    assert ("vis", False, True, False) in kinds
    assert ("vis", False, False, True) in kinds
    tile = next(e for e in els if e.query is not None)
    listens = tile.result_maker.filterables[0].listen
    assert {x.dashboard_filter_name for x in listens} == {"Created Date", "Source"}
    only_queries = sdk.dashboard_dashboard_elements("1", fields="id,query")
    assert only_queries[0].title is None


def test_errors_in_lookers_shapes(sdk) -> None:
    with pytest.raises(sdk_error.SDKError) as exc:
        sdk.run_inline_query(
            "json",
            m.WriteQuery(
                model="system__activity",
                view="history",
                fields=["history.id"],
                filters={"history.workspace_id": "x"},
            ),
        )
    assert exc.value.message == "Invalid filter: history.workspace_id"
    assert "/400/post/queries/run/:result_format" in exc.value.documentation_url
    with pytest.raises(sdk_error.SDKError, match="Not found"):
        sdk.run_inline_query(
            "json", m.WriteQuery(model="system__activity", view="nope", fields=["history.id"])
        )
    with pytest.raises(sdk_error.SDKError) as exc:
        sdk.run_inline_query("json", m.WriteQuery(model="system__activity", view="history"))
    assert exc.value.errors[0].field == "fields"
    assert exc.value.errors[0].code == "missing"
