"""The tap's code against responses recorded from real Looker instances (tests/fixtures/looker).

Pure code (type mapping, field parsing, value converters) is called directly; what crosses HTTP
(login, explore metadata through the looker-sdk, query-task polling) runs against a small local
server that answers with the recorded bodies.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tap_looker_query.errors import LoginError, LookerQueryError
from tap_looker_query.looker.client import LookerClient
from tap_looker_query.looker.query import QueryBody
from tap_looker_query.looker.runs import QueryRuns
from tap_looker_query.looker.transport import ClientSettings
from tap_looker_query.schema import (
    KNOWN_TYPES,
    Kind,
    LookerField,
    converter_for,
    kind_of,
    property_schema,
)
from tap_looker_query.tap import TapLookerQuery

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Self

FIXTURES = Path(__file__).parent.parent / "fixtures" / "looker"
EXPLORE_FILES = sorted(FIXTURES.glob("app_lookml_diagram_*.json"))
UTC = dt.UTC
#: A successful login as Looker answers it (looker-cli#97); the token is a placeholder.
LOGIN_OK = {"access_token": "<placeholder-token>", "token_type": "Bearer", "expires_in": 3600}


def recorded(name: str) -> dict[str, t.Any]:
    """A fixture file: `_source` plus `body` or `interactions`."""
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert {"repository", "commit", "path"} <= doc["_source"].keys()
    return t.cast("dict[str, t.Any]", doc)


def explore_fields(body: dict[str, t.Any]) -> Iterator[dict[str, t.Any]]:
    for group in ("dimensions", "measures", "filters", "parameters"):
        yield from body["fields"].get(group) or []


# Replaying recorded answers over HTTP


@dataclass
class Answer:
    """One HTTP answer: a JSON value (or text, for non-JSON content types)."""

    status: int
    body: t.Any = None
    content_type: str | None = "application/json"

    @classmethod
    def recorded(cls, interaction: dict[str, t.Any]) -> Answer:
        response = interaction["response"]
        return cls(response["status"], response["body"], response["content_type"])

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if self.content_type == "application/json":
            return json.dumps(self.body).encode()
        return str(self.body).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: t.Any


@dataclass
class Replay:
    """A local Looker stand-in: `respond(request)` picks the answer, every request is kept."""

    respond: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode()
                request = Request(self.command, url.path, parse_qs(url.query), body)
                replay.requests.append(request)
                answer = replay.respond(request)
                data = answer.encoded()
                self.send_response(answer.status)
                if answer.content_type:
                    self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, method: str, prefix: str) -> list[str]:
        return [r.path for r in self.requests if r.method == method and r.path.startswith(prefix)]


def with_login(answers: Callable[[Request], Answer | None]) -> Callable[[Request], Answer]:
    """`answers`, plus a successful login and logout; anything else unknown is a 404."""

    def respond(request: Request) -> Answer:
        if request.path == "/api/4.0/login":
            return Answer(200, LOGIN_OK)
        if request.method == "DELETE" and request.path.endswith("/logout"):
            return Answer(204, None, None)
        answer = answers(request)
        return answer if answer is not None else Answer(404, {"message": "Not found"})

    return respond


def client_for(replay: Replay, **settings: t.Any) -> LookerClient:
    options: dict[str, t.Any] = {
        "max_retries": 0,
        "verify_ssl": False,
        "timeout": 120,
        "max_retry_wait": 60.0,
        "max_concurrent_queries": 4,
        "query_mode": "auto",
        "query_timeout": 600.0,
        **settings,
    }
    return LookerClient(
        ClientSettings(
            base_url=replay.base_url, client_id="id", client_secret="<placeholder>", **options
        ),
        logging.getLogger("test_recorded_looker"),
    )


# 1. Explore metadata: every recorded field type maps to its documented JSON type

#: The JSON type Looker's documentation gives each type's values in `json` results
#: (FACTS.md §2.5; measure and dimension type reference pages), as (type, format).
DOCUMENTED: dict[str, tuple[str, str | None]] = {
    "string": ("string", None),
    "number": ("number", None),
    "yesno": ("boolean", None),
    "tier": ("string", None),
    "date": ("string", None),  # a filter-only field of type date: never a column
    "date_time": ("string", "date-time"),
    "date_date": ("string", "date"),
    "date_week": ("string", "date"),
    "date_month": ("string", None),
    "date_quarter": ("string", None),
    "date_year": ("integer", None),
    "date_day_of_week": ("string", None),
    "date_hour_of_day": ("integer", None),
    # not converted to the query zone: the database's local time, no offset to claim
    "date_raw": ("string", None),
    "count": ("integer", None),
    "count_distinct": ("integer", None),
    **dict.fromkeys(
        [
            "sum",
            "sum_distinct",
            "average",
            "average_distinct",
            "median",
            "median_distinct",
            "percentile",
            "percentile_distinct",
        ],
        ("number", None),
    ),
}


def documented(item: dict[str, t.Any]) -> tuple[str, str | None]:
    if item["type"] in {"min", "max"}:  # follow the aggregated field, as is_numeric says
        return ("number", None) if item["is_numeric"] else ("string", None)
    return DOCUMENTED[item["type"]]


def test_the_recordings_hold_the_fields_the_review_counted():
    bodies = [recorded(path.name)["body"] for path in EXPLORE_FILES]
    counts = {b["id"]: sum(1 for _ in explore_fields(b)) for b in bodies}
    assert sum(counts.values()) == 611
    assert sum(n for explore, n in counts.items() if not explore.startswith("2020-election")) == 515


@pytest.mark.parametrize("path", EXPLORE_FILES, ids=lambda p: p.stem)
def test_every_recorded_field_maps_to_its_documented_json_type(path):
    body = recorded(path.name)["body"]
    wrong = {}
    for item in explore_fields(body):
        looker_field = LookerField.from_api(item)
        kind = kind_of(looker_field)
        assert kind is not None, f"{item['name']}: type {item['type']!r} is not mapped"
        schema = property_schema(looker_field, kind)
        got = (schema["type"][0], schema.get("format"))
        if got != documented(item):
            wrong[item["name"]] = (item["type"], got, documented(item))
    assert wrong == {}


def test_every_type_a_live_server_lists_is_mapped():
    """`supported_measure_types` is Looker's own enumeration of dimension and measure types."""
    listed: set[str] = set()
    for path in EXPLORE_FILES:
        for entry in recorded(path.name)["body"]["supported_measure_types"]:
            listed.add(entry["dimension_type"])
            listed.update(entry["measure_types"])
    unmapped = sorted(
        name
        for name in listed
        if name not in KNOWN_TYPES or kind_of(LookerField("v.f", name)) is None
    )
    assert len(listed) > 80
    assert unmapped == []


@pytest.mark.parametrize("path", EXPLORE_FILES, ids=lambda p: p.stem)
def test_discovery_reads_each_recorded_explore_through_the_sdk(caplog, path):
    """`--discover`'s code (looker-sdk deserialisation, LookerField parsing, schema) on each
    body Looker really sent: every field typed as documented, no unknown-type warning."""
    body = recorded(path.name)["body"]
    explore_path = f"/api/4.0/lookml_models/{body['model_name']}/explores/{body['name']}"
    selectable = [
        item for item in explore_fields(body) if item["category"] in {"dimension", "measure"}
    ]

    def answers(request: Request) -> Answer | None:
        return Answer(200, body) if request.path == explore_path else None

    spec = {
        "name": "polling",
        "model": body["model_name"],
        "explore": body["name"],
        "fields": [item["name"] for item in selectable],
    }
    with Replay(with_login(answers)) as replay, caplog.at_level(logging.WARNING):
        config = {
            "base_url": replay.base_url,
            "client_id": "id",
            "client_secret": "<placeholder>",
            "verify_ssl": False,
            "queries": [spec],
        }
        tap = TapLookerQuery(config=config, parse_env_config=False)
        try:
            catalog = tap.catalog_dict
        finally:
            tap.close()
    assert replay.paths("GET", explore_path) == [explore_path]
    assert not [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    [stream] = catalog["streams"]
    properties = stream["schema"]["properties"]
    assert len(properties) == len(selectable)
    if path.stem == "app_lookml_diagram_polling":
        assert len(selectable) == 83
    for item in selectable:
        prop = properties[item["name"].replace(".", "_")]
        assert (prop["type"][0], prop.get("format")) == documented(item), item["name"]
        assert prop["title"] == item["label"]


# 2. A real json_detail result parses, its values convert as their fields' types say


def test_the_recorded_json_detail_result_converts_as_its_fields_say():
    body = recorded("actions_json_detail_example.json")["body"]
    fields = {
        item["name"]: LookerField.from_api(item, category=group[:-1])
        for group in ("dimensions", "measures")
        for item in body["fields"][group]
    }
    kinds = {name: kind_of(f) for name, f in fields.items()}
    assert kinds == {"orders.created_month": Kind.STRING, "orders.count": Kind.INTEGER}
    converters = {name: converter_for(kind, UTC) for name, kind in kinds.items()}
    rows = [
        {name: converters[name](cell["value"]) for name, cell in row.items() if name in fields}
        for row in body["data"]
    ]
    assert len(rows) == len(body["data"]) > 1
    assert rows[0] == {"orders.created_month": "2017-07", "orders.count": 773}
    assert all(type(row["orders.count"]) is int for row in rows)
    assert all(len(row["orders.created_month"]) == len("2017-07") for row in rows)


# 3. Query tasks: the client's polling understands the statuses Looker reported


def recorded_tasks() -> list[tuple[str, dict[str, t.Any], dict[str, t.Any], list[dict]]]:
    """(task id, POST /queries interaction, POST /query_tasks interaction, its status entries)."""
    interactions = recorded("spectacles_query_tasks.json")["interactions"]
    queries = [i for i in interactions if i["request"]["path"].startswith("/api/3.1/queries")]
    creates = [i for i in interactions if i["request"]["path"].startswith("/api/3.1/query_tasks?")]
    polls = [i["response"]["body"] for i in interactions if "multi_results" in i["request"]["path"]]
    by_query = {q["response"]["body"]["id"]: q for q in queries}
    tasks = []
    for create in creates:
        task_id = create["response"]["body"]["id"]
        entries = [poll[task_id] for poll in polls if task_id in poll]
        query = by_query[create["request"]["body"]["query_id"]]
        tasks.append((task_id, query, create, entries))
    return tasks


def test_the_recorded_polls_show_every_status():
    sequences = {
        task_id: [e["status"] for e in entries] for task_id, *_, entries in recorded_tasks()
    }
    assert sorted(sequences.values()) == [
        ["added", "error"],
        ["complete"],
        ["error"],
        ["expired", "error"],
        ["running", "error"],
    ]


@pytest.mark.parametrize(
    ("task_id", "query", "create", "entries"),
    recorded_tasks(),
    ids=lambda v: "-".join(e["status"] for e in v) if isinstance(v, list) else "",
)
def test_the_client_polls_a_task_through_the_recorded_statuses(task_id, query, create, entries):
    """The tap polls `GET /query_tasks/{id}` (QueryTask.status), not multi_results; both carry
    the same status words, so each recorded multi_results entry is served as that task's
    status, in the order Looker reported them."""
    statuses = iter(entries)
    final = entries[-1]

    def answers(request: Request) -> Answer | None:
        if request.method == "POST" and request.path == "/api/4.0/queries":
            return Answer.recorded(query)
        if request.method == "POST" and request.path == "/api/4.0/query_tasks":
            return Answer.recorded(create)
        if request.path == f"/api/4.0/query_tasks/{task_id}":
            return Answer(200, {"id": task_id, "status": next(statuses)["status"]})
        if request.path == f"/api/4.0/query_tasks/{task_id}/results":
            if final["status"] == "complete":  # the rows of the recorded json_detail result
                return Answer(200, final["data"]["data"])
            # Not recorded for `json` tasks: the docs say 400 with the database's message.
            return Answer(400, {"message": final["data"]["errors"][0]["message_details"]})
        return None

    body = QueryBody(
        model="eye_exam",
        view="users__fail",
        fields=("users__fail.city",),
        filters={},
        sorts=(),
        limit=10,
        query_timezone="UTC",
    )
    with Replay(with_login(answers)) as replay:
        client = client_for(replay, query_mode="async", poll_interval=0.01)
        runs = QueryRuns(client, logging.getLogger("test_recorded_looker"))
        try:
            if final["status"] == "complete":
                assert b"".join(runs.stream_run(body, "json")) == b"[]"
            else:
                with pytest.raises(LookerQueryError) as caught:
                    b"".join(runs.stream_run(body, "json"))
                message = str(caught.value)
                assert f"task {task_id} ended with status 'error'" in message
                assert final["data"]["errors"][0]["message_details"] in message
        finally:
            client.logout()
    # Looker's integer query id went on as the task's query_id; every status was read in turn
    [created] = [r for r in replay.requests if r.path == "/api/4.0/query_tasks"]
    assert created.body["query_id"] == str(query["response"]["body"]["id"])
    assert created.body["result_format"] == "json"
    assert len(replay.paths("GET", f"/api/4.0/query_tasks/{task_id}")) >= len(entries)
    assert next(statuses, None) is None


# 4. Bad logins, as Looker answered them in 2020 (JSON) and 2022 (HTML, Content-Type */*)


@pytest.mark.parametrize(
    "name", ["spectacles_bad_login_json.json", "spectacles_bad_login_html.json"]
)
def test_a_refused_login_is_a_clear_login_error(name):
    [login] = recorded(name)["interactions"]
    assert login["response"]["status"] == 404

    def respond(request: Request) -> Answer:
        return Answer.recorded(login)

    with Replay(respond) as replay:
        client = client_for(replay)
        try:
            with pytest.raises(LoginError) as caught:
                client.auth_headers()
        finally:
            client.logout()
    message = str(caught.value)
    assert "refused the API credentials" in message
    assert "check client_id and client_secret" in message
    assert "<html" not in message.lower()
    assert replay.paths("POST", "/api/4.0/login") == ["/api/4.0/login"]  # refused is final
