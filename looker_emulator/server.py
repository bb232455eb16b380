"""The HTTP side: :class:`LookerEmulator`, serving Looker API 4.0 paths under ``/api/4.0``."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlsplit

from looker_emulator import content, formats, merge
from looker_emulator.datasets import build_models, master_database
from looker_emulator.datasets.synthetic import SyntheticSource
from looker_emulator.engine import (
    ApiError,
    Compiled,
    LookerDbError,
    compile_query,
    normalize_body,
)
from looker_emulator.faults import Faults, HttpFault
from looker_emulator.lookml import apply_fields_param, explore_metadata, parse_fields_param

if TYPE_CHECKING:
    from collections.abc import Iterator

    from looker_emulator.engine import Database
    from looker_emulator.lookml import Model

API = "/api/4.0"
DOC_BASE = "https://cloud.google.com/looker/docs/r/err/4.0"
RELEASE = "26.12.3"
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
API_USER_ID = "1"
#: Result bodies are sent in HTTP chunks of about this size, or after this long.
CHUNK_BYTES = 32 * 1024
CHUNK_SECONDS = 0.05
#: How often an inline run waiting in the per-user queue looks for a free slot.
QUEUE_POLL = 0.02
#: What a query dropped from the per-user queue reports. Looker documents the drop ("Query
#: Timeouts and Queueing": after 600 s in the queue) but not its message: this text is a guess.
DROPPED = (
    "Query was dropped from the queue: it waited {:.0f} seconds for one of this user's "
    "{} query slots (per-user query limit)."
)


@dataclass
class RequestLog:
    """One request as the emulator saw it (``status`` 0 = connection dropped)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class _Token:
    user_id: str
    issued_ns: int
    expires_at: float


@dataclass
class _Task:
    id: str
    query: dict[str, Any]
    result_format: str
    user_id: str
    ready_at: float
    created: float
    source: str | None
    limit: Any
    error: str | None = None
    malform: str | None = None
    expired_pending: bool = False
    killed: bool = False
    look_id: str | None = None
    dashboard_id: str | None = None
    server_table_calcs: bool = False
    #: When the task got one of its user's query slots (None while it waits in the queue).
    started: float | None = None
    #: Seconds it runs once started (``ready_at`` is ``started + run_seconds``).
    run_seconds: float = 0.0
    #: Seconds it reports ``expired`` after it ran (``Faults.expire_tasks``).
    expired_for: float = 0.0
    from_cache: bool = False
    #: Looker dropped it from the per-user queue (it waited past ``queue_timeout``).
    dropped: bool = False


@dataclass
class _Running:
    id: str
    user_id: str
    query: dict[str, Any]
    started: float
    kill: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: str
    auth: bool = True
    result: bool = False


def _route(
    method: str, template: str, handler: str, *, auth: bool = True, result: bool = False
) -> _Route:
    regex = re.sub(r":(\w+)", r"(?P<\1>[^/]+)", template)
    return _Route(method, re.compile(f"^{API}{regex}$"), template, handler, auth, result)


ROUTES = [
    _route("POST", "/login", "login", auth=False),
    _route("DELETE", "/logout", "logout"),
    _route("GET", "/versions", "versions", auth=False),
    _route("GET", "/user", "me"),
    _route("GET", "/lookml_models", "all_models"),
    _route("GET", "/lookml_models/:model", "model"),
    _route("GET", "/lookml_models/:model/explores/:explore", "explore"),
    _route("POST", "/queries/run/:result_format", "run_inline", result=True),
    _route("POST", "/queries", "create_query"),
    _route("GET", "/queries/slug/:slug", "query_for_slug"),
    _route(
        "GET",
        "/queries/models/:model/views/:view/run/:result_format",
        "run_url_encoded",
        result=True,
    ),
    _route("GET", "/queries/:query_id", "get_query"),
    _route("GET", "/queries/:query_id/run/:result_format", "run_query", result=True),
    _route("POST", "/query_tasks", "create_task"),
    _route("GET", "/query_tasks/multi_results", "multi_results"),
    _route("GET", "/query_tasks/:task_id", "get_task"),
    _route("GET", "/query_tasks/:task_id/results", "task_results", result=True),
    _route("GET", "/running_queries", "running_queries"),
    _route("DELETE", "/running_queries/:query_task_id", "kill_query"),
    _route("GET", "/merge_queries/:merge_query_id", "merge_query"),
    _route("GET", "/looks/:look_id", "get_look"),
    _route("GET", "/looks/:look_id/run/:result_format", "run_look", result=True),
    _route("GET", "/dashboards/:dashboard_id", "get_dashboard"),
    _route("GET", "/dashboards/:dashboard_id/dashboard_elements", "dashboard_elements"),
]
LOGOUT_ROUTE = _Route("DELETE", re.compile(r"^/api/logout$"), "/api/logout", "logout", auth=True)


def _doc_url(status: int, method: str, template: str) -> str:
    return f"{DOC_BASE}/{status}/{method.lower()}{template}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LookerEmulator/" + RELEASE
    emu: LookerEmulator  # set on the subclass made per emulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log (``emu.requests`` records requests)."""

    # ------------------------------------------------------------ plumbing

    def do_GET(self) -> None:
        """Serve a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        """Serve a PUT (no PUT operations are emulated)."""
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        """Serve a PATCH (no PATCH operations are emulated)."""
        self._dispatch("PATCH")

    def _read_body(self) -> tuple[bytes, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").lower()
        if not raw:
            return raw, None
        if "x-www-form-urlencoded" in ctype:
            return raw, {
                k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()
            }
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, raw.decode(errors="replace")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.req_path = url.path
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.query_multi = parse_qs(url.query, keep_blank_values=True)
        self.method = method
        self.status = 0
        self.truncate: HttpFault | None = None
        self.template = url.path.removeprefix(API)
        self.raw_body, self.body = self._read_body()
        self.logged = False
        try:
            route, params = self._match(method, url.path)
            if route is not None:
                self.template = route.template
            fault = self.emu.faults.take_http(url.path, is_result=bool(route and route.result))
            if fault is not None and self._apply_fault(fault):
                return
            if route is None:
                raise ApiError(404, "Not found")
            self.user_id = self._authenticate() if route.auth else None
            getattr(self, "h_" + route.handler)(**params)
        except ApiError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if not self.logged:  # no response was started: a dropped connection
                self._record(self.status)

    def _record(self, status: int) -> None:
        self.logged = True
        entry = RequestLog(self.method, self.req_path, self.query, self.body, status)
        self.emu._log(entry)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Log the request before its response starts, so clients never see it unlogged."""
        if not self.logged:
            self._record(code)
        super().send_response(code, message)

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        if LOGOUT_ROUTE.pattern.match(path) and method == "DELETE":
            return LOGOUT_ROUTE, {}
        for r in ROUTES:
            m = r.pattern.match(path)
            if m and r.method == method:
                return r, m.groupdict()
        return None, {}

    def _apply_fault(self, fault: HttpFault) -> bool:
        if fault.kind == "drop":
            self.status = 0
            self._drop()
            return True
        if fault.kind == "truncate":
            self.truncate = fault
            return False
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.html:
            page = (
                f"<html>\r\n<head><title>{fault.status} Bad Gateway</title></head>\r\n<body>\r\n"
                f"<center><h1>{fault.status} Bad Gateway</h1></center>\r\n"
                "<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
            self._send_bytes(fault.status, "text/html", page.encode(), headers)
        else:
            messages = {
                429: "Too Many Requests",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
                504: "Gateway Timeout",
                404: "Not found",
                401: "Requires authentication.",
            }
            self._send_error(ApiError(fault.status, messages.get(fault.status, "Error")), headers)
        return True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_bytes(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.method != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, obj: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self._send_bytes(status, "application/json", formats.dumps(obj), headers)

    def _send_error(self, e: ApiError, headers: dict[str, str] | None = None) -> None:
        doc = _doc_url(e.status, self.method, self.template)
        body: dict[str, Any] = {"message": e.message, "documentation_url": doc}
        if e.errors is not None:
            body["errors"] = [dict(err, documentation_url=doc) for err in e.errors]
        hdrs = dict(headers or {})
        if e.status == 429 and "Retry-After" not in hdrs:
            hdrs["Retry-After"] = "1"
        self._send_json(body, e.status, hdrs)

    def _send_stream(self, ctype: str, chunks: Iterator[bytes], status: int = 200) -> None:
        """Send a chunked body; honours a pending truncation fault."""
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        budget = self.truncate.after_bytes if self.truncate else None
        try:
            for ch in chunks:
                if not ch:
                    continue
                if budget is not None and len(ch) >= budget:
                    part = ch[:budget]
                    self.wfile.write(f"{len(ch):x}\r\n".encode() + part)
                    self.wfile.flush()
                    self._drop()
                    return
                if budget is not None:
                    budget -= len(ch)
                self.wfile.write(f"{len(ch):x}\r\n".encode() + ch + b"\r\n")
            if budget is not None:  # a body shorter than the cut: cut the terminator
                self.wfile.flush()
                self._drop()
                return
            self.wfile.write(b"0\r\n\r\n")
        except LookerDbError:  # an error after the headers: the connection just ends
            self._drop()

    def _authenticate(self) -> str:
        auth = self.headers.get("Authorization") or ""
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
            user = self.emu._check_token(parts[1].strip())
            if user is not None:
                return user
        raise ApiError(401, "Requires authentication.")

    # ------------------------------------------------------------ auth

    def h_login(self) -> None:
        creds = dict(self.query)
        if isinstance(self.body, dict):
            creds.update({k: str(v) for k, v in self.body.items()})
        cid, secret = creds.get("client_id"), creds.get("client_secret")
        if not cid or not secret:
            raise ApiError(400, "client_id and client_secret are required")
        if cid != self.emu.client_id or secret != self.emu.client_secret:
            raise ApiError(404, "Not found")
        token = self.emu._issue_token(API_USER_ID)
        self._send_json(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.emu.token_ttl}
        )

    def h_logout(self) -> None:
        auth = (self.headers.get("Authorization") or "").split(None, 1)
        if len(auth) == 2:
            self.emu._tokens.pop(auth[1].strip(), None)
        self.status = 204
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def h_versions(self) -> None:
        base = self.emu.base_url
        current = {
            "version": "4.0",
            "full_version": f"4.0.{RELEASE.rsplit('.', 1)[0]}",
            "status": "current",
            "swagger_url": f"{base}/api/4.0/swagger.json",
        }
        self._send_json(
            {
                "looker_release_version": RELEASE,
                "current_version": current,
                "supported_versions": [current],
                "api_server_url": base,
                "web_server_url": base,
            }
        )

    def h_me(self) -> None:
        self._send_json(self._fields(self.emu._user()))

    # ------------------------------------------------------------ metadata

    def _fields(self, obj: Any) -> Any:
        sel = self.query.get("fields")
        return apply_fields_param(obj, parse_fields_param(sel)) if sel else obj

    def h_all_models(self) -> None:
        internal = self.query.get("include_internal", "false").lower() == "true"
        models = [m.metadata() for m in self.emu.models.values() if internal or not m.internal]
        offset = int(self.query.get("offset") or 0)
        limit = self.query.get("limit")
        models = models[offset : offset + int(limit)] if limit else models[offset:]
        self._send_json(self._fields(models))

    def _model(self, name: str) -> Model:
        m = self.emu.models.get(name)
        if m is None:
            raise ApiError(404, "Not found")
        return m

    def h_model(self, model: str) -> None:
        self._send_json(self._fields(self._model(model).metadata()))

    def h_explore(self, model: str, explore: str) -> None:
        m = self._model(model)
        e = m.explores.get(explore)
        if e is None or f"{model}::{explore}" in self.emu.faults.explore_404:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(explore_metadata(m, e)))

    # ------------------------------------------------------------ queries

    def _format(self, result_format: str) -> str:
        if result_format not in formats.SUPPORTED:
            raise ApiError(400, f"Unsupported result format: {result_format}")
        return result_format

    def h_run_inline(self, result_format: str) -> None:
        fmt = self._format(result_format)
        self._run(normalize_body(self.body), fmt)

    def h_run_query(self, query_id: str, result_format: str) -> None:
        fmt = self._format(result_format)
        q = self.emu.queries.get(query_id)
        if q is None:
            raise ApiError(404, "Not found")
        self._run(content.runnable(q), fmt)

    def h_run_url_encoded(self, model: str, view: str, result_format: str) -> None:
        fmt = self._format(result_format)
        body: dict[str, Any] = {"model": model, "view": view}
        if self.query.get("fields"):
            body["fields"] = self.query["fields"].split(",")
        if self.query.get("sorts"):
            body["sorts"] = self.query["sorts"].split(",")
        for k in ("limit", "query_timezone", "filter_expression"):
            if k in self.query:
                body[k] = self.query[k]
        body["filters"] = {
            k[2:-1]: v[-1]
            for k, v in self.query_multi.items()
            if k.startswith("f[") and k.endswith("]")
        }
        self._run(body, fmt, limit_param=False)

    def h_run_look(self, look_id: str, result_format: str) -> None:
        fmt = self._format(result_format)
        look = self.emu.looks.get(look_id)
        if look is None:
            raise ApiError(404, "Not found")
        self._run(content.runnable(look["query"]), fmt)

    def h_create_query(self) -> None:
        body = normalize_body(self.body)
        self.emu._compile(body)
        self._send_json(self._fields(self.emu.queries.create(body)))

    def h_get_query(self, query_id: str) -> None:
        q = self.emu.queries.get(query_id)
        if q is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(q))

    def h_query_for_slug(self, slug: str) -> None:
        q = self.emu.queries.by_slug(slug)
        if q is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(q))

    def _run(self, body: dict[str, Any], fmt: str, *, limit_param: bool = True) -> None:
        emu = self.emu
        compiled = emu._compile(
            body,
            self.query.get("limit") if limit_param else None,
            server_table_calcs=self.query.get("server_table_calcs") == "true",
        )
        try:
            slot = emu._slot(self.user_id or API_USER_ID, body)
        except QueueDroppedError as exc:  # reported as a query error, as a database's would be
            ctype, payload = formats.error_body(fmt, compiled, str(exc))
            self._send_bytes(200, ctype, payload)
            return
        with slot as running:
            error, malform, slow = emu.faults.start_query_run()
            compiled.from_cache = emu.faults.take_from_cache()
            delay = emu.faults.query_latency + slow
            if delay > 0 and running.kill.wait(delay):
                error = "Query killed: the query was cancelled by a user or an administrator."
            if error is not None:
                ctype, payload = formats.error_body(fmt, compiled, error)
                self._send_bytes(200, ctype, payload)
                return
            self._stream_result(compiled, fmt, malform)

    def _stream_result(self, compiled: Compiled, fmt: str, malform: str | None) -> None:
        rows = self.emu.db.stream(compiled.sql, compiled.params)
        chunks = formats.render(
            fmt, compiled, rows, row_latency=self.emu.faults.row_latency, malform=malform
        )
        try:
            first = next(chunks, b"")
        except LookerDbError as exc:
            ctype, payload = formats.error_body(fmt, compiled, str(exc))
            self._send_bytes(200, ctype, payload)
            return
        ctype = formats.CONTENT_TYPES[fmt] if malform != "html" else "text/html; charset=utf-8"

        def all_chunks() -> Iterator[bytes]:
            # Rows go out in HTTP chunks of about CHUNK_BYTES, as a server's output buffer
            # sends them (one chunk per row would make every client parse a million chunks),
            # or sooner when rows come slowly (CHUNK_SECONDS), so a slow result still trickles.
            pending = [first]
            size = len(first)
            since = time.monotonic()
            for chunk in chunks:
                pending.append(chunk)
                size += len(chunk)
                if size >= CHUNK_BYTES or time.monotonic() - since >= CHUNK_SECONDS:
                    yield b"".join(pending)
                    pending, size, since = [], 0, time.monotonic()
            yield b"".join(pending)

        self._send_stream(ctype, all_chunks())

    # ------------------------------------------------------------ query tasks

    def h_create_task(self) -> None:
        body = self.body if isinstance(self.body, dict) else {}
        errors = [
            {"field": k, "code": "missing", "message": "This field is required."}
            for k in ("query_id", "result_format")
            if not body.get(k)
        ]
        if errors:
            raise ApiError(422, "Validation Failed", errors)
        fmt = str(body["result_format"])
        if fmt not in formats.SUPPORTED:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "field": "result_format",
                        "code": "invalid",
                        "message": f"Unsupported result format: {fmt}",
                    }
                ],
            )
        q = self.emu.queries.get(str(body["query_id"]))
        if q is None:
            raise ApiError(404, "Not found")
        task = self.emu._create_task(
            q, fmt, self.user_id or API_USER_ID, body, self.query.get("limit")
        )
        self._send_json(self._fields(self.emu._task_object(task, status="added")))

    def _task(self, task_id: str) -> _Task:
        t = self.emu.tasks.get(task_id)
        if t is None:
            raise ApiError(404, "Not found")
        return t

    def h_get_task(self, task_id: str) -> None:
        t = self._task(task_id)
        self._send_json(self._fields(self.emu._task_object(t)))

    def h_task_results(self, task_id: str) -> None:
        t = self._task(task_id)
        status = self.emu._task_status(t, consume=False)
        if status in ("added", "running"):
            self.status = 202
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if status == "killed":
            raise ApiError(404, "Not found")
        compiled = self.emu._compile(
            content.runnable(t.query), t.limit, server_table_calcs=t.server_table_calcs
        )
        compiled.from_cache = t.from_cache
        if t.error is not None:
            if t.result_format == "json_detail":
                ctype, payload = formats.error_body("json_detail", compiled, t.error)
                self._send_bytes(200, ctype, payload)
                return
            raise ApiError(400, t.error)
        self._stream_result(compiled, t.result_format, t.malform)

    def h_multi_results(self) -> None:
        raw = self.query.get("query_task_ids") or ""
        if raw.startswith("["):  # a JSON array (a plain list passed to the SDK) is tolerated
            with contextlib.suppress(ValueError):
                raw = ",".join(str(x) for x in json.loads(raw))
        ids = [x.strip() for x in raw.split(",") if x.strip()]
        out: dict[str, Any] = {}
        for tid in ids:
            t = self.emu.tasks.get(tid)
            if t is None:
                out[tid] = {"status": "missing"}
                continue
            status = self.emu._task_status(t)
            if status == "error":
                out[tid] = {
                    "status": "error",
                    "data": {
                        "id": tid,
                        "runtime": 0.0,
                        "sql": None,
                        "errors": [
                            {"message": t.error, "message_details": None, "sql_error_loc": None}
                        ],
                    },
                }
            elif status == "complete":
                compiled = self.emu._compile(
                    content.runnable(t.query), t.limit, server_table_calcs=t.server_table_calcs
                )
                compiled.from_cache = t.from_cache
                body = b"".join(
                    formats.render(
                        t.result_format, compiled, self.emu.db.stream(compiled.sql, compiled.params)
                    )
                )
                data: Any = body.decode()
                if t.result_format.startswith("json"):
                    data = json.loads(body)
                out[tid] = {"status": "complete", "data": data}
            else:
                out[tid] = {"status": status}
        self._send_json(out)

    def h_running_queries(self) -> None:
        self._send_json(self.emu._running_list())

    def h_kill_query(self, query_task_id: str) -> None:
        if not self.emu._kill(query_task_id):
            raise ApiError(404, "Not found")
        self.status = 204
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ------------------------------------------------------------ content

    def h_get_look(self, look_id: str) -> None:
        look = self.emu.looks.get(look_id)
        if look is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(look))

    def h_get_dashboard(self, dashboard_id: str) -> None:
        d = self.emu.dashboards.get(dashboard_id)
        if d is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(d))

    def h_merge_query(self, merge_query_id: str) -> None:
        found = self.emu.merge_queries.get(merge_query_id)
        if found is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(found))

    def h_dashboard_elements(self, dashboard_id: str) -> None:
        d = self.emu.dashboards.get(dashboard_id)
        if d is None:
            raise ApiError(404, "Not found")
        self._send_json(self._fields(d["dashboard_elements"]))


class QueueDroppedError(Exception):
    """An inline run waited past the queue timeout for one of its user's query slots."""


class _Slot:
    """Context manager holding one of a user's concurrent-query slots."""

    def __init__(self, emu: LookerEmulator, running: _Running) -> None:
        self.emu = emu
        self.running = running

    def __enter__(self) -> _Running:
        return self.running

    def __exit__(self, *exc: object) -> None:
        with self.emu._lock:
            self.emu._running.pop(self.running.id, None)


class LookerEmulator:
    """A local Looker API 4.0 server over SQLite data sets (see the package README)."""

    def __init__(  # noqa: PLR0917 - the documented interface takes them positionally too
        self,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        synthetic_rows: int = 10_000,
        token_ttl: int = 3600,
        dataset: str = "all",
        database: Database | None = None,
    ) -> None:
        """Configure the emulator; :meth:`start` serves it.

        ``database`` defaults to a fresh clone of the session's master data set, which the
        emulator owns: :meth:`close` closes it, and so does collecting the emulator (its data
        stay readable after :meth:`stop`); a ``database`` given here stays the caller's.
        """
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.token_ttl = token_ttl
        self.dataset = dataset
        self.faults = Faults()
        self.requests: list[RequestLog] = []
        self._source = SyntheticSource(synthetic_rows)
        self.models = build_models(dataset, self._source)
        self._owns_db = database is None
        self.db = database if database is not None else master_database().clone()
        if self._owns_db:
            weakref.finalize(self, self.db.close)
        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._running: dict[str, _Running] = {}
        self.tasks: dict[str, _Task] = {}
        #: Per user: the most query slots held at once, and the most queries sent and not
        #: finished at once (queued ones included): what the concurrency tests read.
        self.peak_running: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self._queued_inline: dict[str, int] = {}
        self._now: datetime | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.queries = content.QueryStore("")
        self.looks: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.merge_queries: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a background thread; returns ``self``."""
        if self.db.closed:
            msg = "this emulator was closed (its database is gone): start a new LookerEmulator"
            raise RuntimeError(msg)
        handler = type("Handler", (_Handler,), {"emu": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._load_content()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="looker-emulator",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (``query_rows`` and ``insert_rows`` still work)."""
        if self._server is not None:
            for r in list(self._running.values()):
                r.kill.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        """Stop, and close the emulator's own database now rather than when it is collected."""
        self.stop()
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Self:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving the ``with`` block."""
        self.stop()

    def _load_content(self) -> None:
        self.queries = content.QueryStore(self.base_url)
        self.looks = {}
        for lid, (title, body) in content.LOOK_DEFS.items():
            if body["model"] in self.models:
                self.looks[lid] = content.look_object(
                    lid, title, self.queries.create(body), self.base_url
                )
        self.dashboards = {}
        if "system__activity" in self.models and "thelook" in self.models:
            self.dashboards = content.dashboard_objects(self.queries, self.looks, self.base_url)
            self.merge_queries = merge.merge_queries(self.queries)
            self.dashboards.update(
                merge.merge_dashboards(
                    self.queries, self.merge_queries, self.dashboards["1"], self.base_url
                )
            )

    # ------------------------------------------------------------ public helpers

    @property
    def synthetic_rows(self) -> int:
        """Row count of the synthetic explore."""
        return self._source.rows

    @synthetic_rows.setter
    def synthetic_rows(self, n: int) -> None:
        self._source.rows = int(n)

    @property
    def now(self) -> datetime:
        """The "now" relative filters count from (aware UTC); real time unless pinned."""
        return self._now if self._now is not None else datetime.now(UTC)

    @now.setter
    def now(self, value: datetime | None) -> None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        self._now = value

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self.requests.clear()

    def _log(self, entry: RequestLog) -> None:
        with self._lock:
            self.requests.append(entry)

    def query_rows(  # noqa: PLR0917 - the documented interface
        self,
        model: str,
        explore: str,
        fields: list[str],
        filters: dict[str, str] | None = None,
        sorts: list[str] | None = None,
        limit: str | int | None = "-1",
        query_timezone: str = "UTC",
        filter_expression: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rows the ``json`` format returns for this query (same engine as HTTP)."""
        body: dict[str, Any] = {
            "model": model,
            "view": explore,
            "fields": fields,
            "filters": filters or {},
            "sorts": sorts or [],
            "limit": limit,
            "query_timezone": query_timezone,
        }
        if filter_expression:
            body["filter_expression"] = filter_expression
        compiled = self._compile(body)
        names = [f.name for f in compiled.columns]
        return [
            dict(zip(names, r, strict=True)) for r in self.db.stream(compiled.sql, compiled.params)
        ]

    def insert_rows(self, model: str, explore_or_table: str, rows: list[dict[str, Any]]) -> None:
        """Add rows to an explore's base table (see README: keys are dimension names)."""
        from looker_emulator.inserts import insert_rows  # noqa: PLC0415 - keeps start-up import light

        m = self.models.get(model)
        if m is None:
            msg = f"unknown model {model!r}"
            raise KeyError(msg)
        insert_rows(self.db, m, explore_or_table, rows)

    # ------------------------------------------------------------ internals used by the handler

    def _compile(
        self, body: dict[str, Any], limit_override: Any = None, *, server_table_calcs: bool = False
    ) -> Compiled:
        return compile_query(
            self.models, body, self.now, limit_override, server_table_calcs=server_table_calcs
        )

    def _issue_token(self, user_id: str) -> str:
        token = secrets.token_hex(20)
        with self._lock:
            self._tokens[token] = _Token(
                user_id, time.monotonic_ns(), time.monotonic() + self.token_ttl
            )
        return token

    def _check_token(self, token: str) -> str | None:
        t = self._tokens.get(token)
        if (
            t is None
            or time.monotonic() > t.expires_at
            or t.issued_ns <= self.faults.revoked_before_ns
        ):
            return None
        return t.user_id

    def _user(self) -> dict[str, Any]:
        return {
            "can": {"show": True, "index": True, "show_details": True, "index_details": True},
            "avatar_url": None,
            "avatar_url_without_sizing": None,
            "credentials_api3": [],
            "credentials_embed": [],
            "display_name": "API Emulator",
            "email": "api@emulator.invalid",
            "embed_group_space_id": None,
            "first_name": "API",
            "group_ids": ["1"],
            "home_folder_id": "1",
            "id": API_USER_ID,
            "is_disabled": False,
            "last_name": "Emulator",
            "locale": "en",
            "looker_versions": [RELEASE],
            "models_dir_validated": None,
            "personal_folder_id": "2",
            "presumed_looker_employee": False,
            "role_ids": ["2"],
            "sessions": [],
            "ui_state": None,
            "verified_looker_employee": False,
            "roles_externally_managed": False,
            "allow_direct_roles": True,
            "allow_normal_group_membership": True,
            "allow_roles_from_normal_groups": True,
            "embed_group_folder_id": None,
            "is_iam_admin": False,
            "can_manage_api3_creds": True,
            "is_service_account": False,
            "service_account_name": None,
            "url": f"{self.base_url}/api/4.0/users/{API_USER_ID}",
        }

    # ------------------------------------------------------------ the per-user query queue
    #
    # Looker runs at most `concurrency_limit` (15) queries per user at once; further queries
    # wait in a queue, first come first served, and are dropped after `queue_timeout` (600 s)
    # there ("Query Timeouts and Queueing"). A query task's time is simulated: `_advance`
    # starts each queued task at the moment a slot frees (an earlier task's `ready_at`). An
    # inline run holds its request until it gets a slot.

    def _advance(self, now: float) -> None:
        """Start (or drop) the queued tasks whose slot freed (or whose wait ran out) by `now`."""
        limit = self.faults.concurrency_limit
        timeout = self.faults.queue_timeout
        with self._lock:
            queued = sorted(
                (x for x in self.tasks.values() if x.started is None and not x.dropped),
                key=lambda x: x.created,
            )
            # First come, first served: no task starts before one queued ahead of it started.
            floor: dict[str, float] = {}
            for x in self.tasks.values():
                if x.started is not None:
                    floor[x.user_id] = max(floor.get(x.user_id, x.started), x.started)
            for t in queued:
                if t.killed:
                    continue
                at = max(t.created, floor.get(t.user_id, t.created))
                ends = sorted(
                    x.ready_at
                    for x in self.tasks.values()
                    if x.user_id == t.user_id
                    and x.started is not None
                    and not x.killed
                    and x.started <= at < x.ready_at
                )
                inline = sum(1 for r in self._running.values() if r.user_id == t.user_id)
                over = len(ends) + inline - limit
                start = at if over < 0 else (ends[over] if over < len(ends) else float("inf"))
                if start <= min(now, t.created + timeout):
                    t.started = start
                    t.ready_at = start + t.run_seconds
                    floor[t.user_id] = start
                    self._note_in_flight(t.user_id)
                elif now >= t.created + timeout:
                    t.dropped = True
                    t.ready_at = t.created + timeout
                    t.error = DROPPED.format(timeout, limit)
                else:
                    floor[t.user_id] = float("inf")  # it waits on: so do those behind it

    def _busy(self, user_id: str) -> int:
        """The user's queries holding a slot now: inline runs and started, unfinished tasks."""
        now = time.monotonic()
        inline = sum(1 for r in self._running.values() if r.user_id == user_id)
        tasks = sum(
            1
            for t in self.tasks.values()
            if t.user_id == user_id and t.started is not None and not t.killed and t.ready_at > now
        )
        return inline + tasks

    def _waiting(self, user_id: str) -> int:
        return sum(
            1
            for t in self.tasks.values()
            if t.user_id == user_id and t.started is None and not t.dropped and not t.killed
        )

    def _note_in_flight(self, user_id: str) -> None:
        """Keep the peaks the tests read: slots held, and queries sent but not finished."""
        running = self._busy(user_id)
        self.peak_running[user_id] = max(self.peak_running.get(user_id, 0), running)
        outstanding = running + self._waiting(user_id) + self._queued_inline.get(user_id, 0)
        self.peak_in_flight[user_id] = max(self.peak_in_flight.get(user_id, 0), outstanding)

    def _slot(self, user_id: str, body: dict[str, Any]) -> _Slot:
        """Wait in the user's queue for a query slot; raise `QueueDroppedError` past the timeout."""
        arrived = time.monotonic()
        with self._lock:
            self._queued_inline[user_id] = self._queued_inline.get(user_id, 0) + 1
            self._note_in_flight(user_id)
        try:
            while True:
                now = time.monotonic()
                self._advance(now)
                with self._lock:
                    free = self._busy(user_id) < self.faults.concurrency_limit
                    if free and not self._waiting(user_id):
                        r = _Running(uuid.uuid4().hex, user_id, body, now)
                        self._running[r.id] = r
                        self._queued_inline[user_id] -= 1
                        arrived = -1.0  # counted as running now, no longer as queued
                        self._note_in_flight(user_id)
                        return _Slot(self, r)
                waited = now - arrived
                if waited >= self.faults.queue_timeout or self._server is None:
                    limit = self.faults.concurrency_limit
                    raise QueueDroppedError(DROPPED.format(waited, limit))
                time.sleep(QUEUE_POLL)
        finally:
            if arrived >= 0:
                with self._lock:
                    self._queued_inline[user_id] -= 1

    def _create_task(
        self, query: dict[str, Any], fmt: str, user_id: str, body: dict[str, Any], limit: Any
    ) -> _Task:
        self._compile(content.runnable(query), limit)
        now = time.monotonic()
        self._advance(now)
        with self._lock:
            error, malform, slow = self.faults.start_query_run()
            t = _Task(
                uuid.uuid4().hex,
                query,
                fmt,
                user_id,
                float("inf"),
                now,
                body.get("source"),
                limit,
                error,
                malform,
                self.faults.take_task_expired(),
                look_id=body.get("look_id"),
                dashboard_id=body.get("dashboard_id"),
                run_seconds=self.faults.query_latency + slow,
                expired_for=self.faults.take_task_expiry(),
                from_cache=self.faults.take_from_cache(),
                server_table_calcs=bool(body.get("server_table_calcs")),
            )
            self.tasks[t.id] = t
            self._note_in_flight(user_id)
        self._advance(now)
        return t

    def _task_status(self, t: _Task, *, consume: bool = True) -> str:
        now = time.monotonic()
        self._advance(now)
        if t.killed:
            return "killed"
        if t.dropped:
            return "error"
        if t.started is None or now < t.ready_at:
            # Waiting in the user's queue reports `added` (the recordings' first status).
            return "running" if t.started is not None else "added"
        expired = now < t.ready_at + t.expired_for or t.expired_pending
        if expired and not now < t.ready_at + t.expired_for and consume:
            t.expired_pending = False
        if expired:
            return "expired"
        return "error" if t.error is not None else "complete"

    def _task_object(self, t: _Task, status: str | None = None) -> dict[str, Any]:
        st = status or self._task_status(t)
        done = st in ("complete", "error")
        return {
            "can": {"show": True, "cancel": True},
            "id": t.id,
            "query_id": t.query["id"],
            "query": t.query,
            "generate_links": False,
            "force_production": True,
            "path_prefix": None,
            "cache": True,
            "server_table_calcs": t.server_table_calcs,
            "cache_only": False,
            "cache_key": None,
            "status": st,
            "source": t.source,
            "runtime": round(max(0.0, t.ready_at - t.created), 3) if done else None,
            "rebuild_pdts": False,
            "result_source": ("cache" if t.from_cache else "query") if done else None,
            "look_id": t.look_id,
            "dashboard_id": t.dashboard_id,
            "result_format": t.result_format,
        }

    def _running_list(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        with self._lock:
            items: list[tuple[str, str, float, dict[str, Any]]] = [
                (r.id, r.user_id, r.started, r.query) for r in self._running.values()
            ]
            items += [
                (t.id, t.user_id, t.created, t.query)
                for t in self.tasks.values()
                if not t.killed and t.started is not None and t.ready_at > now
            ]
        for rid, uid, started, q in items:
            out.append(
                {
                    "can": {"cancel": True},
                    "id": rid,
                    "query_task_id": rid,
                    "user": {"id": uid, "display_name": "API Emulator"},
                    "query": {k: q.get(k) for k in ("model", "view", "fields", "filters")},
                    "query_id": q.get("id"),
                    "source": "api4",
                    "node_id": "emulator",
                    "status": "running",
                    "runtime": round(now - started, 3),
                    "sql": None,
                }
            )
        return out

    def _kill(self, task_id: str) -> bool:
        with self._lock:
            r = self._running.get(task_id)
            if r is not None:
                r.kill.set()
                return True
            t = self.tasks.get(task_id)
            if t is not None:
                t.killed = True
                return True
        return False
