"""A hostile HTTP server for tests: a pass-through proxy in front of the Looker emulator that
misbehaves on chosen paths, and a recorder standing in for "another host".

The proxy (on 127.0.0.1) forwards every request to its upstream unless a rule matches: then it
answers a redirect, a body of its choosing (any status and content type), or a body trickled a
byte at a time. The recorder (on 127.0.0.2, a different address on the same loopback) keeps
what it receives, so a test can assert that nothing left for it. Both are bounded in time: a
trickle stops when the client hangs up or after `max_seconds`, and each server shuts itself
down after `lifetime` seconds even if a test forgets to.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

#: Headers that belong to one connection, not to the message (RFC 9110 7.6.1), plus the two
#: the proxy recomputes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
    }
)


@dataclass
class Seen:
    """One request a server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What a rule answers: a status, headers and a body, optionally trickled."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds between single bytes of the body; 0 sends it at once.
    trickle: float = 0.0
    #: A trickle stops after this long even if the client is still reading.
    max_seconds: float = 60.0


def redirect(location: str, status: int = 302) -> Answer:
    """A redirect to `location`."""
    return Answer(status=status, content_type=None, headers={"Location": location})


def reply(body: Any, status: int = 200, content_type: str = "application/json") -> Answer:
    """A body (bytes or str as given, anything else as JSON) with a status and content type."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    return Answer(status=status, body=body, content_type=content_type)


def trickle(body: bytes, every: float = 1.0, content_type: str = "application/json") -> Answer:
    """A 200 with a correct Content-Length whose body arrives one byte per `every` seconds."""
    return Answer(body=body, content_type=content_type, trickle=every)


@dataclass
class Rule:
    """Answer `answer` to requests whose method and path match, `count` times (None: always)."""

    method: str
    path: str
    answer: Answer | Callable[[Seen], Answer]
    count: int | None = None
    used: int = 0

    def matches(self, seen: Seen) -> bool:
        if self.count is not None and self.used >= self.count:
            return False
        path = seen.path.split("?", 1)[0]
        return self.method in {"*", seen.method} and path.startswith(self.path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: tests read `seen`, not the console."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, dict(self.headers.items()), body)
        owner = self.server.owner
        with owner.lock:
            owner.seen.append(seen)
            rule = next((r for r in owner.rules if r.matches(seen)), None)
            if rule is not None:
                rule.used += 1
        if rule is not None:
            answer = rule.answer if isinstance(rule.answer, Answer) else rule.answer(seen)
            self._answer(answer)
        elif owner.upstream is not None:
            self._forward(seen, owner.upstream)
        else:
            self._answer(owner.default)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        if answer.content_type is not None:
            self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if not answer.trickle:
            self.wfile.write(answer.body)
            return
        ends = time.monotonic() + answer.max_seconds
        try:
            for index in range(len(answer.body)):
                if time.monotonic() > ends or self.server.owner.stopped.is_set():
                    return
                self.wfile.write(answer.body[index : index + 1])
                self.wfile.flush()
                time.sleep(answer.trickle)
        except OSError:  # the client gave up: that is what a trickle test wants
            return

    def _forward(self, seen: Seen, upstream: str) -> None:
        target = urlsplit(upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        headers = {k: v for k, v in seen.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


class HostileServer:
    """A threaded HTTP server that forwards to `upstream` (or answers `default`) unless a rule
    matches. `seen` lists every request it received."""

    def __init__(
        self,
        upstream: str | None = None,
        host: str = "127.0.0.1",
        default: Answer | None = None,
        lifetime: float = 300.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream
        self.default = default or reply({"message": "Not found"}, status=404)
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def on(
        self,
        method: str,
        path: str,
        answer: Answer | Callable[[Seen], Answer],
        count: int | None = None,
    ) -> Rule:
        """Answer `answer` to `method` (or "*") on paths starting with `path`."""
        rule = Rule(method, path, answer, count)
        with self.lock:
            self.rules.append(rule)
        return rule

    def requests_to(self, path: str) -> list[Seen]:
        """The requests received on paths starting with `path`."""
        with self.lock:
            return [s for s in self.seen if s.path.split("?", 1)[0].startswith(path)]

    def start(self) -> HostileServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: A login answer, for a recorder that pretends to be Looker.
TOKEN = {"access_token": "from-the-other-host", "token_type": "Bearer", "expires_in": 3600}
