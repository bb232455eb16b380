"""The emulator's JSON responses validate against the official spec's component schemas.

Schemas come from ``looker_emulator/spec/looker_4_0_components.json`` (a verbatim subset of
sdk-codegen's ``Looker.4.0.oas.json``). OpenAPI 3.0 ``nullable`` is translated to JSON Schema, and
validation is stricter than the spec in one way (no properties outside the schema) and looser in two
documented ways: ``$ref`` properties may be ``null`` (Looker sends ``"look": null`` on a query tile
although the spec cannot say so on a ``$ref``), and ``JsonBi.rows`` items are objects (the spec says
strings; Looker sends row objects).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from looker_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator

SPEC = Path(__file__).resolve().parents[1] / "spec" / "looker_4_0_components.json"


# Keys real Looker responses carry beyond the spec's properties (spectacles' captured responses).
KNOWN_EXTRAS = {"LookmlModelNavExplore": {"can"}}
_DROP = (
    "nullable",
    "readOnly",
    "x-looker-status",
    "x-looker-undocumented",
    "x-looker-polymorphic-types",
    "description",
    "format",
)


def _translate(node: Any, name: str | None = None) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (nullable, type any, strict properties)."""
    if isinstance(node, list):
        return [_translate(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"anyOf": [{"$ref": node["$ref"]}, {"type": "null"}]}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _DROP:
            continue
        if k == "properties":
            out[k] = {prop: _translate(sub) for prop, sub in v.items()}
        else:
            out[k] = _translate(v)
    if node.get("type") == "array" and "enum" in out:  # the spec puts item enums on the array
        out["items"] = dict(out.get("items", {}), enum=out.pop("enum"))
    if out.get("type") == "any":
        del out["type"]
    elif node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in node and "additionalProperties" not in node:
        extras = KNOWN_EXTRAS.get(name or "", set())
        out["additionalProperties"] = False
        out["properties"].update({e: {} for e in extras})
    return out


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    doc = json.loads(SPEC.read_text())
    assert doc["x-origin"]["commit"] == "c2bf549bdb6bf02117875712094195a7b48701fb"
    comps = copy.deepcopy(doc["components"]["schemas"])
    comps["JsonBi"]["properties"]["rows"]["items"] = {"type": "object"}
    return {name: _translate(s, name) for name, s in comps.items()}


def check(schemas: dict[str, Any], name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    jsonschema.Draft202012Validator(schema).validate(instance)


class Api:
    def __init__(self, emu: LookerEmulator) -> None:
        self.base = emu.base_url + "/api/4.0"
        r = requests.post(
            f"{self.base}/login",
            data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
            timeout=10,
        )
        self.login = r.json()
        self.headers = {"Authorization": f"Bearer {self.login['access_token']}"}

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, params=params, timeout=30)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.base + path, headers=self.headers, json=body, timeout=30)


@pytest.fixture(scope="module")
def api(looker_emulator_session: LookerEmulator) -> Api:
    return Api(looker_emulator_session)


def test_access_token(schemas, api) -> None:
    check(schemas, "AccessToken", api.login)


def test_models_and_every_explore(schemas, api) -> None:
    models = api.get("/lookml_models", include_internal="true").json()
    for model in models:
        check(schemas, "LookmlModel", model)
        check(schemas, "LookmlModel", api.get(f"/lookml_models/{model['name']}").json())
        for nav in model["explores"]:
            check(schemas, "LookmlModelNavExplore", nav)
            explore = api.get(f"/lookml_models/{model['name']}/explores/{nav['name']}").json()
            check(schemas, "LookmlModelExplore", explore)


def test_query_and_tasks(schemas, api) -> None:
    body = {
        "model": "thelook",
        "view": "order_items",
        "fields": ["order_items.created_date", "order_items.count"],
        "limit": "10",
    }
    q = api.post("/queries", body).json()
    check(schemas, "Query", q)
    task = api.post("/query_tasks", {"query_id": q["id"], "result_format": "json"}).json()
    check(schemas, "QueryTask", task)
    check(schemas, "QueryTask", api.get(f"/query_tasks/{task['id']}").json())


def test_json_bi(schemas, api) -> None:
    body = {
        "model": "thelook",
        "view": "order_items",
        "fields": [
            "order_items.created_time",
            "order_items.status",
            "order_items.total_sale_price",
        ],
        "limit": "5",
    }
    doc = api.post("/queries/run/json_bi", body).json()
    check(schemas, "JsonBi", doc)
    assert len(doc["rows"]) == 5


def test_looks_dashboards_elements(schemas, api) -> None:
    for look_id in ("1", "2"):
        check(schemas, "LookWithQuery", api.get(f"/looks/{look_id}").json())
    for dash_id in ("1", "2", "3", "4", "5", "6"):
        check(schemas, "Dashboard", api.get(f"/dashboards/{dash_id}").json())
        for el in api.get(f"/dashboards/{dash_id}/dashboard_elements").json():
            check(schemas, "DashboardElement", el)


def test_merge_queries(schemas, api, looker_emulator_session) -> None:
    merges = looker_emulator_session.merge_queries
    assert merges
    for merge_id in merges:
        merge = api.get(f"/merge_queries/{merge_id}").json()
        check(schemas, "MergeQuery", merge)
        for source in merge["source_queries"]:
            check(schemas, "Query", api.get(f"/queries/{source['query_id']}").json())
    assert api.get("/merge_queries/999").status_code == 404


def test_user_and_versions(schemas, api) -> None:
    check(schemas, "User", api.get("/user").json())
    check(schemas, "ApiVersion", api.get("/versions").json())


def test_error_bodies(schemas, api, looker_emulator_session) -> None:
    r = requests.post(
        f"{api.base}/login", data={"client_id": "x", "client_secret": "y"}, timeout=10
    )
    assert r.status_code == 404
    check(schemas, "Error", r.json())
    assert r.json()["message"] == "Not found"
    r = requests.get(f"{api.base}/user", timeout=10)
    assert r.status_code == 401
    check(schemas, "Error", r.json())
    r = api.post(
        "/queries/run/json",
        {
            "model": "system__activity",
            "view": "history",
            "fields": ["history.id"],
            "filters": {"history.bogus": "1"},
        },
    )
    assert r.status_code == 400
    check(schemas, "Error", r.json())
    assert r.json() == {
        "message": "Invalid filter: history.bogus",
        "documentation_url": "https://cloud.google.com/looker/docs/r/err/4.0/400/post/queries/run/:result_format",
    }
    r = api.get("/lookml_models/system__activity/explores/bogus")
    assert r.status_code == 404
    check(schemas, "Error", r.json())
    r = api.post("/queries/run/json", {"view": "history"})
    assert r.status_code == 422
    check(schemas, "ValidationError", r.json())
    assert {e["field"] for e in r.json()["errors"]} == {"model"}
