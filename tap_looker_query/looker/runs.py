"""Query runs: inline (`POST /queries/run/{format}`) or as Looker query tasks, streamed.

`query_mode` decides how a query runs: `sync` inline; `async` as a query task (create the
query, start the task, poll it, then stream its results); `auto` inline, switching that query
to a task when Looker takes longer than `timeout` to answer, so that no HTTP request has to
outlive a long query.
"""

from __future__ import annotations

import threading
import time
import typing as t

import requests

from tap_looker_query.errors import (
    ConnectionLostError,
    LookerError,
    LookerQueryError,
    LookerUnavailableError,
    QueryTimeoutError,
    query_error,
    raise_if_stopped,
)
from tap_looker_query.looker.transport import USER_AGENT, iter_body, snippet_of

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

    from tap_looker_query.looker.client import LookerClient
    from tap_looker_query.looker.query import QueryBody

#: `query_task_results` while the task runs: 202 in API 4.0 today, 204 in older releases.
_NOT_READY = frozenset({202, 204})


class QueryRuns:
    """Runs queries for the engine, each within one of the client's concurrent-query slots."""

    def __init__(
        self, client: LookerClient, logger: logging.Logger, stop: threading.Event | None = None
    ) -> None:
        """Run through `client` (its session, login and query slots); task polls end on `stop`."""
        self._stop = stop or threading.Event()
        self._client = client
        self._settings = client.settings
        self._logger = logger

    def open_run(self, body: QueryBody, result_format: str) -> requests.Response:
        """Run a query and return the response with its body not yet read.

        `query_mode` decides how: `sync` runs inline; `async` runs a Looker query task; `auto`
        runs inline and, when Looker takes longer than `timeout` to answer, runs the query as
        a task instead (no HTTP request then has to outlive a long query). The caller reads
        `response.raw` incrementally and must close the response.

        Raises:
            QueryTimeoutError: the task ran past `query_timeout` (it was killed).
            requests.ReadTimeout: in `sync` mode, Looker did not answer within `timeout`.
        """
        mode = self._settings.query_mode
        if mode != "async":
            try:
                response = self._client.post_run(
                    self._client.run_url(result_format),
                    body,
                    stream=True,
                    retry_read_timeouts=mode == "sync",
                )
            except requests.ReadTimeout:
                if mode == "sync":  # 'sync' never runs query tasks
                    raise
                self._to_task("read timeout", f"Looker took over {self._settings.timeout} s")
            except LookerUnavailableError as exc:
                # The proxy in front of Looker gave up on the query (504): sent again inline
                # it would time out again.
                if mode == "sync" or exc.status != 504:  # noqa: PLR2004
                    raise
                self._to_task("504", "Looker's proxy answered 504 Gateway Timeout")
            else:
                response.raw.decode_content = True
                return response
        return self._run_task(body, result_format)

    def _to_task(self, reason: str, what: str) -> None:
        self._client.stats.count_to_task(reason)
        self._logger.info("%s; running the query as a query task", what)

    def _run_task(self, body: QueryBody, result_format: str) -> requests.Response:
        """Run the query as a Looker query task and open its results once it completed.

        Looker may report a task `expired` for a while before it turns `complete` or `error`:
        such a task is polled on until `query_timeout`, then created anew once.

        Raises:
            QueryTimeoutError: the task ran past `query_timeout` (it was killed).
            LookerQueryError: the task failed, or stayed `expired` twice over.
        """
        task_id = self._start_task(body, result_format)
        started = time.monotonic()
        status, source = self._wait(task_id, started)
        if status == "expired":
            self._logger.warning(
                "Looker query task %s was still 'expired' after %.0f s; creating it anew",
                task_id,
                self._settings.query_timeout,
            )
            first = task_id
            task_id = self._start_task(body, result_format)
            started = time.monotonic()
            status, source = self._wait(task_id, started)
            if status == "expired":
                msg = (
                    f"Looker query tasks {first} and {task_id} both stayed 'expired' for "
                    f"query_timeout ({self._settings.query_timeout:.0f} s); Looker's last "
                    "answer: status 'expired'"
                )
                raise LookerQueryError(msg)
        if source and "cache" in source.lower():
            # Asked with cache=false, yet Looker may answer from its cache (a 2022 recording;
            # System Activity without Elite System Activity keeps a 12-hour cache).
            self._logger.info(
                "%s: Looker answered from its cache (query task %s, result_source %r) although "
                "the tap asked for fresh results",
                body.label or "a query",
                task_id,
                source,
            )
        return self._results(task_id, started)

    def _start_task(self, body: QueryBody, result_format: str) -> str:
        """Create the query and a task running it; the task's id."""
        api = self._client.api
        query = api("POST", "/queries", json_body=body.as_json(), params={"fields": "id"})
        task = api(
            "POST",
            "/query_tasks",
            json_body={
                "query_id": str(query.json()["id"]),
                "result_format": result_format,
                "source": USER_AGENT,
                **({"server_table_calcs": True} if body.server_table_calcs else {}),
            },
            params={"cache": "false", "apply_formatting": "false", "fields": "id,status"},
        ).json()
        return str(task["id"])

    def _wait(self, task_id: str, started: float) -> tuple[str, str | None]:
        """Poll the task with backoff until `complete`, or `expired` when it stayed so to the end.

        Returns the last status and the task's `result_source` (`query`, or `cache`).
        A task waiting in Looker's per-user queue reports `added`: it is polled on like one
        that runs (the queue is normal; `query_timeout` bounds the whole wait).

        Raises:
            QueryTimeoutError: still running at `query_timeout` (the task is killed).
            LookerQueryError: the task ended in `error`, `killed` or `failure`.
        """
        wait = self._settings.poll_interval
        status = ""
        while time.monotonic() - started <= self._settings.query_timeout:
            answer = self._client.api(
                "GET", f"/query_tasks/{task_id}", params={"fields": "id,status,result_source"}
            ).json()
            status = str(answer["status"])
            if status == "complete":
                source = answer.get("result_source")
                return status, None if source is None else str(source)
            if status in {"error", "killed", "failure"}:
                raise query_error(self._task_error(task_id, status))
            if self._stop.wait(wait):  # the run is stopping: the task must not run on
                self._kill(task_id)
                raise_if_stopped(self._stop)
            wait = min(wait * 1.5, 5.0)
        if status == "expired":
            return status, None
        self._kill(task_id)
        msg = (
            f"the query ran longer than query_timeout ({self._settings.query_timeout:.0f} s); "
            f"Looker query task {task_id} was killed"
        )
        raise QueryTimeoutError(msg)

    def _results(self, task_id: str, started: float) -> requests.Response:
        """The results of a completed task (Looker may still answer 'not ready' for a moment)."""
        while True:
            response = self._client.api("GET", f"/query_tasks/{task_id}/results", stream=True)
            if response.status_code not in _NOT_READY:
                response.raw.decode_content = True
                return response
            response.close()
            if time.monotonic() - started > self._settings.query_timeout:
                self._kill(task_id)
                msg = (
                    "the query ran longer than query_timeout; Looker query task "
                    f"{task_id} was killed"
                )
                raise QueryTimeoutError(msg)
            time.sleep(self._settings.poll_interval)

    def _task_error(self, task_id: str, status: str) -> str:
        try:
            response = self._client.api("GET", f"/query_tasks/{task_id}/results")
            detail = snippet_of(response)
        except LookerError as exc:
            detail = str(exc)
        return f"Looker query task {task_id} ended with status '{status}': {detail}"

    def _kill(self, task_id: str) -> None:
        try:
            self._client.api("DELETE", f"/running_queries/{task_id}")
        except (LookerError, requests.RequestException) as exc:
            self._logger.warning("Could not kill Looker query task %s: %s", task_id, exc)

    def stream_run(self, body: QueryBody, result_format: str) -> Iterator[bytes]:
        """The body of a query run in chunks, within one concurrent-query slot.

        The body must arrive within `query_timeout` of waiting for it, the time a query task
        may run: a server that trickles it is abandoned, and the window is read again.

        Raises:
            ConnectionLostError: the connection failed or timed out, or the body took longer
                than `query_timeout` to arrive (worth another try).
        """
        try:
            with self._client.query_slots:
                response = self.open_run(body, result_format)
                try:
                    yield from iter_body(response, self._settings.query_timeout, "query_timeout")
                finally:
                    response.close()
        except (requests.RequestException, OSError) as exc:
            raise ConnectionLostError(str(exc)) from exc
