"""Each fault switch, the per-user concurrency limit and the async task lifecycle."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from looker_sdk import error as sdk_error
from looker_sdk import models40 as m

from looker_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator
from looker_emulator.server import API_USER_ID as API_USER
from looker_emulator.tests.test_sdk import make_sdk

QUERY = {
    "model": "system__activity",
    "view": "history",
    "fields": ["history.id", "history.created_time", "history.runtime", "history.is_single_query"],
    "sorts": ["history.id"],
    "limit": "100",
}


class Client:
    def __init__(self, emu: LookerEmulator) -> None:
        self.emu = emu
        self.base = emu.base_url + "/api/4.0"
        self.token = self.login()

    def login(self) -> str:
        return requests.post(
            f"{self.base}/login",
            data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
            timeout=10,
        ).json()["access_token"]

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def run(self, fmt: str = "json", body: dict | None = None, **kw) -> requests.Response:
        return requests.post(
            f"{self.base}/queries/run/{fmt}",
            json=body or QUERY,
            headers=self.headers,
            timeout=kw.pop("timeout", 30),
            **kw,
        )

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, params=params, timeout=30)

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.base + path, headers=self.headers, json=body, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.base + path, headers=self.headers, timeout=30)

    def task(self, fmt: str = "json") -> str:
        qid = self.post("/queries", QUERY).json()["id"]
        r = self.post("/query_tasks", {"query_id": qid, "result_format": fmt})
        assert r.status_code == 200, r.text
        return r.json()["id"]


@pytest.fixture
def client(looker_emulator: LookerEmulator) -> Client:
    return Client(looker_emulator)


def test_query_and_row_latency(client) -> None:
    client.emu.faults.query_latency = 0.3
    t0 = time.monotonic()
    assert len(client.run().json()) == 100
    assert time.monotonic() - t0 >= 0.3
    client.emu.faults.query_latency = 0
    client.emu.faults.row_latency = 0.005
    t0 = time.monotonic()
    assert len(client.run().json()) == 100
    assert time.monotonic() - t0 >= 0.45


def test_fail_next_json_html_retry_after_and_path(client) -> None:
    f = client.emu.faults
    f.fail_next(503, count=2, path="/queries/run")
    assert client.get("/user").status_code == 200  # path filter
    for _ in range(2):
        r = client.run()
        assert r.status_code == 503
        assert set(r.json()) == {"message", "documentation_url"}
    assert client.run().status_code == 200
    f.fail_next(429)
    r = client.get("/user")
    assert (r.status_code, r.headers["Retry-After"]) == (429, "1")
    f.fail_next(429, retry_after=7)
    assert client.get("/user").headers["Retry-After"] == "7"
    f.fail_next(502, html=True)
    r = client.run()
    assert r.status_code == 502
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<html>" in r.text
    for status in (500, 504):
        f.fail_next(status)
        assert client.run().status_code == status


def test_fail_next_through_sdk_surfaces_sdk_error(looker_emulator) -> None:
    sdk = make_sdk(looker_emulator)
    sdk.me()
    looker_emulator.faults.fail_next(502, html=True)
    with pytest.raises(sdk_error.SDKError, match="502 Bad Gateway"):
        sdk.me()


def test_drop_next(client) -> None:
    client.emu.faults.drop_next(path="/queries/run")
    with pytest.raises(requests.ConnectionError):
        client.run()
    assert client.run().status_code == 200
    assert [r.status for r in client.emu.requests if r.path.endswith("/run/json")][:2] == [0, 200]


def test_truncate_next(client) -> None:
    client.emu.faults.truncate_next(after_bytes=50)
    assert client.get("/user").status_code == 200  # results only
    with pytest.raises(requests.exceptions.ChunkedEncodingError), client.run(stream=True) as r:  # noqa: PT012
        assert r.status_code == 200
        b"".join(r.iter_content(1024))
    assert len(client.run().json()) == 100


def test_revoke_tokens(client) -> None:
    client.emu.faults.revoke_tokens()
    r = client.get("/user")
    assert r.status_code == 401
    assert r.json()["message"] == "Requires authentication."
    client.token = client.login()
    assert client.get("/user").status_code == 200


def test_token_expiry_uses_expires_in(looker_emulator) -> None:
    looker_emulator.token_ttl = 1
    c = Client(looker_emulator)
    assert c.get("/user").status_code == 200
    time.sleep(1.1)
    assert c.get("/user").status_code == 401


def test_looker_error_on_nth_query(client) -> None:
    client.emu.faults.looker_error_on_query(2, message="boom")
    assert isinstance(client.run().json()[0]["history.id"], int)
    r = client.run()
    assert (r.status_code, r.json()) == (200, [{"looker_error": "boom"}])
    assert len(client.run().json()) == 100
    client.emu.faults.looker_error_on_query(1, message="bi boom")
    doc = client.run("json_bi").json()
    assert doc["rows"] == [{"looker_error": "bi boom"}]
    assert "metadata" in doc


def test_looker_error_on_task(client) -> None:
    client.emu.faults.looker_error_on_query(1, message="task boom")
    tid = client.task()
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "error"
    r = client.get(f"/query_tasks/{tid}/results")
    assert r.status_code == 400
    assert r.json()["message"] == "task boom"
    multi = client.get("/query_tasks/multi_results", query_task_ids=tid).json()
    assert multi[tid]["status"] == "error"
    assert multi[tid]["data"]["errors"][0]["message"] == "task boom"


@pytest.mark.parametrize(
    "kind", ["html", "invalid_json", "empty", "missing_field", "wrong_type", "bad_datetime"]
)
def test_malform_next(client, kind: str) -> None:
    client.emu.faults.malform_next(kind)
    r = client.run()
    assert r.status_code == 200
    if kind == "html":
        assert r.text.lstrip().startswith("<!DOCTYPE html>")
    elif kind == "invalid_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.text)
        assert r.text.startswith('[{"')
    elif kind == "empty":
        assert r.content == b""
    else:
        rows = r.json()
        if kind == "missing_field":
            assert all("history.is_single_query" not in row for row in rows)
        elif kind == "wrong_type":
            assert all(row["history.id"] == "Yes" for row in rows)
        else:
            assert all("/" in row["history.created_time"] for row in rows)
    assert len(client.run().json()) == 100  # consumed


def test_slow_query_sync_and_kill(client) -> None:
    client.emu.faults.slow_query(5)
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", client.run()))
    t0 = time.monotonic()
    t.start()
    deadline = time.monotonic() + 5
    while not client.get("/running_queries").json():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running = client.get("/running_queries").json()
    assert client.delete(f"/running_queries/{running[0]['id']}").status_code == 204
    t.join(10)
    assert time.monotonic() - t0 < 4
    assert "looker_error" in result["r"].json()[0]


def test_slow_query_outlives_a_client_timeout(client) -> None:
    client.emu.faults.slow_query(2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.run(timeout=0.5)


def test_task_lifecycle_202_and_kill(client) -> None:
    client.emu.faults.slow_query(30)
    tid = client.task()
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "running"
    r = client.get(f"/query_tasks/{tid}/results")
    assert (r.status_code, r.content) == (202, b"")
    assert client.get("/query_tasks/multi_results", query_task_ids=tid).json() == {
        tid: {"status": "running"}
    }
    assert client.delete(f"/running_queries/{tid}").status_code == 204
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "killed"
    assert client.delete("/running_queries/nope").status_code == 404


def test_task_expired_before_complete(client) -> None:
    client.emu.faults.task_expired_before_complete = 1
    tid = client.task()
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "expired"
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "complete"
    assert len(client.get(f"/query_tasks/{tid}/results").json()) == 100
    assert client.emu.faults.task_expired_before_complete == 0


def test_explore_404(client) -> None:
    client.emu.faults.explore_404.add("system__activity::history")
    assert client.get("/lookml_models/system__activity/explores/history").status_code == 404
    assert client.get("/lookml_models/system__activity/explores/event").status_code == 200
    assert client.run().status_code == 200  # queries still run


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_past_the_per_user_limit_tasks_queue_and_start_as_slots_free(client) -> None:
    f = client.emu.faults
    f.concurrency_limit = 2
    f.query_latency = 0.4
    first, second, third = client.task(), client.task(), client.task()
    assert client.get(f"/query_tasks/{third}").json()["status"] == "added"  # queued
    assert len(client.get("/running_queries").json()) == 2
    wait_for(lambda: client.get(f"/query_tasks/{third}").json()["status"] == "running")
    for tid in (first, second, third):
        wait_for(lambda tid=tid: client.get(f"/query_tasks/{tid}").json()["status"] == "complete")
        assert len(client.get(f"/query_tasks/{tid}/results").json()) == 100
    assert client.emu.peak_running[API_USER] == 2
    assert client.emu.peak_in_flight[API_USER] == 3


def test_a_queued_task_is_dropped_after_the_queue_timeout(client) -> None:
    f = client.emu.faults
    f.concurrency_limit = 1
    f.queue_timeout = 0.3
    f.query_latency = 1.0
    first, second = client.task(), client.task()
    wait_for(lambda: client.get(f"/query_tasks/{second}").json()["status"] == "error")
    assert "dropped from the queue" in client.get(f"/query_tasks/{second}/results").text
    assert client.get(f"/query_tasks/{first}").json()["status"] == "running"
    wait_for(lambda: client.get(f"/query_tasks/{first}").json()["status"] == "complete")


def test_an_inline_run_waits_in_the_queue_for_a_slot(client) -> None:
    f = client.emu.faults
    f.concurrency_limit = 1
    f.slow_query(0.5)
    t = threading.Thread(target=client.run)
    t.start()
    wait_for(lambda: bool(client.get("/running_queries").json()))
    started = time.monotonic()
    r = client.run()
    assert r.status_code == 200
    assert len(r.json()) == 100
    assert time.monotonic() - started > 0.2  # it waited for the first run's slot
    t.join(10)
    assert client.emu.peak_running[API_USER] == 1
    assert client.emu.peak_in_flight[API_USER] == 2


def test_an_inline_run_dropped_from_the_queue_answers_a_looker_error(client) -> None:
    f = client.emu.faults
    f.concurrency_limit = 1
    f.queue_timeout = 0.2
    f.slow_query(1.0)
    t = threading.Thread(target=client.run)
    t.start()
    wait_for(lambda: bool(client.get("/running_queries").json()))
    r = client.run()
    assert r.status_code == 200
    [row] = r.json()
    assert "dropped from the queue" in row["looker_error"]
    t.join(10)


def test_a_task_reports_expired_for_a_while_then_completes(client) -> None:
    client.emu.faults.expire_tasks(0.4)
    tid = client.task()
    assert client.get(f"/query_tasks/{tid}").json()["status"] == "expired"
    wait_for(lambda: client.get(f"/query_tasks/{tid}").json()["status"] == "complete")
    assert len(client.get(f"/query_tasks/{tid}/results").json()) == 100
    assert client.get(f"/query_tasks/{client.task()}").json()["status"] == "complete"


def test_a_task_served_from_cache_says_so(client) -> None:
    client.emu.faults.serve_from_cache()
    cached, fresh = client.task(), client.task()
    assert client.get(f"/query_tasks/{cached}").json()["result_source"] == "cache"
    assert client.get(f"/query_tasks/{fresh}").json()["result_source"] == "query"


def test_reset_clears_everything(client) -> None:
    f = client.emu.faults
    f.fail_next(500, count=5)
    f.query_latency = 9
    f.explore_404.add("system__activity::history")
    f.looker_error_on_query(1)
    f.malform_next("empty")
    f.reset()
    assert client.run().status_code == 200
    assert len(client.run().json()) == 100
    assert client.get("/lookml_models/system__activity/explores/history").status_code == 200


def test_sdk_query_task_flow_with_latency(looker_emulator) -> None:
    sdk = make_sdk(looker_emulator)
    looker_emulator.faults.query_latency = 0.3
    q = sdk.create_query(m.WriteQuery(**QUERY))
    task = sdk.create_query_task(
        m.WriteCreateQueryTask(query_id=q.id, result_format=m.ResultFormat.csv)
    )
    assert sdk.query_task_results(task.id) == ""  # 202 while running
    time.sleep(0.35)
    assert sdk.query_task_results(task.id).startswith("History ID,")
