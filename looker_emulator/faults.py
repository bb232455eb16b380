"""Fault injection: Looker's (and its proxies') rough edges, switchable while serving."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MALFORM_KINDS = ("html", "invalid_json", "empty", "missing_field", "wrong_type", "bad_datetime")


@dataclass
class HttpFault:
    """One pending transport-level fault."""

    kind: str  # "status" | "drop" | "truncate"
    count: int
    path: str | None = None
    status: int = 500
    retry_after: int | None = None
    html: bool = False
    after_bytes: int = 100
    results_only: bool = False


T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    value: T
    count: int


@dataclass
class Faults:
    """Switches read by the server on every request; safe to change from a test thread.

    Counted faults (``fail_next``, ``drop_next``, ``truncate_next``, ``malform_next``,
    ``slow_query``, ``looker_error_on_query``, ``task_expired_before_complete``) are consumed as
    they fire.
    """

    query_latency: float = 0.0
    row_latency: float = 0.0
    task_expired_before_complete: int = 0
    explore_404: set[str] = field(default_factory=set)
    #: Looker's per-user query limit: past it, queries wait in a queue (they are not refused).
    concurrency_limit: int = 15
    #: Seconds a query may wait in that queue before Looker drops it (600 by default).
    queue_timeout: float = 600.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _http: list[HttpFault] = field(default_factory=list, repr=False)
    _malform: list[_Pending[str]] = field(default_factory=list, repr=False)
    _slow: list[_Pending[float]] = field(default_factory=list, repr=False)
    _errors: dict[int, str] = field(default_factory=dict, repr=False)
    _expire: list[_Pending[float]] = field(default_factory=list, repr=False)
    _from_cache: int = field(default=0, repr=False)
    _query_runs: int = 0
    revoked_before_ns: int = 0

    def reset(self) -> None:
        """Clear every fault."""
        with self._lock:
            self.query_latency = 0.0
            self.row_latency = 0.0
            self.task_expired_before_complete = 0
            self.explore_404 = set()
            self.concurrency_limit = 15
            self.queue_timeout = 600.0
            self._expire.clear()
            self._from_cache = 0
            self._http.clear()
            self._malform.clear()
            self._slow.clear()
            self._errors.clear()
            self.revoked_before_ns = 0

    # ------------------------------------------------------------ transport faults

    def fail_next(
        self,
        status: int,
        count: int = 1,
        path: str | None = None,
        retry_after: int | None = None,
        html: bool = False,
    ) -> None:
        """Answer ``status`` to the next ``count`` requests (whose path contains ``path``).

        The body is Looker's JSON ``Error``, or an HTML page (as a proxy sends) when ``html``.
        A 429 carries ``Retry-After`` (``retry_after`` or 1).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._http.append(HttpFault("status", count, path, status, retry_after, html))

    def drop_next(self, count: int = 1, path: str | None = None) -> None:
        """Close the connection of the next ``count`` requests without any response."""
        with self._lock:
            self._http.append(HttpFault("drop", count, path))

    def truncate_next(
        self, count: int = 1, path: str | None = None, after_bytes: int = 100
    ) -> None:
        """Send headers and the first ``after_bytes`` of the next result bodies, then close.

        Applies to result-bearing responses only (query runs, Look runs, query task results).
        """
        with self._lock:
            self._http.append(
                HttpFault("truncate", count, path, after_bytes=after_bytes, results_only=True)
            )

    def take_http(self, path: str, *, is_result: bool) -> HttpFault | None:
        """Consume and return the first pending transport fault matching this request."""
        with self._lock:
            for f in self._http:
                if f.count <= 0:
                    continue
                if f.path is not None and f.path not in path:
                    continue
                if f.results_only and not is_result:
                    continue
                f.count -= 1
                hit = HttpFault(**{k: getattr(f, k) for k in f.__dataclass_fields__})
                self._http = [x for x in self._http if x.count > 0]
                return hit
        return None

    # ------------------------------------------------------------ auth

    def revoke_tokens(self) -> None:
        """Reject every token issued so far (401) although its ``expires_in`` still runs."""
        with self._lock:
            self.revoked_before_ns = time.monotonic_ns()

    # ------------------------------------------------------------ query faults

    def looker_error_on_query(
        self, n: int, message: str = "An error occurred while running the query (emulated)."
    ) -> None:
        """Make the ``n``-th query run from now (1 = next) fail with a database error."""
        with self._lock:
            self._errors[self._query_runs + n] = message

    def malform_next(self, kind: str, count: int = 1) -> None:
        """Answer the next ``count`` query runs with a malformed 200 body of ``kind``."""
        if kind not in MALFORM_KINDS:
            msg = f"unknown malform kind {kind!r}; one of {MALFORM_KINDS}"
            raise ValueError(msg)
        with self._lock:
            self._malform.append(_Pending(kind, count))

    def slow_query(self, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` query runs take ``seconds`` before their first byte."""
        with self._lock:
            self._slow.append(_Pending(seconds, count))

    def start_query_run(self) -> tuple[str | None, str | None, float]:
        """Count one query run; return its (looker_error, malform kind, extra delay) faults."""
        with self._lock:
            self._query_runs += 1
            error = self._errors.pop(self._query_runs, None)
            malform = self._take(self._malform)
            slow = self._take(self._slow)
            return error, malform, float(slow or 0.0)

    @staticmethod
    def _take(pending: list[_Pending[T]]) -> T | None:
        for p in pending:
            if p.count > 0:
                p.count -= 1
                value = p.value
                pending[:] = [x for x in pending if x.count > 0]
                return value
        return None

    def expire_tasks(self, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` query tasks report ``expired`` for ``seconds`` once they ran.

        Real Looker reports a task ``expired`` for a while before it turns ``complete`` or
        ``error`` (spectacles issue #111). ``float("inf")``: the task never leaves ``expired``.
        """
        with self._lock:
            self._expire.append(_Pending(seconds, count))

    def take_task_expiry(self) -> float:
        """Consume one ``expire_tasks``: the seconds the next task stays ``expired`` (or 0)."""
        with self._lock:
            seconds = self._take(self._expire)
            return 0.0 if seconds is None else seconds

    def serve_from_cache(self, count: int = 1) -> None:
        """Let the next ``count`` query runs (inline runs or tasks) answer from Looker's cache.

        A recording (spectacles, 2022) shows ``from_cache: true`` on a task created with
        ``cache=false``: such a task's ``result_source`` says ``cache``, and a ``json_detail``
        result (inline or a task's) carries ``from_cache: true``.
        """
        with self._lock:
            self._from_cache += count

    def take_from_cache(self) -> bool:
        """Consume one ``serve_from_cache``."""
        with self._lock:
            if self._from_cache > 0:
                self._from_cache -= 1
                return True
            return False

    def take_task_expired(self) -> bool:
        """Consume one ``task_expired_before_complete``."""
        with self._lock:
            if self.task_expired_before_complete > 0:
                self.task_expired_before_complete -= 1
                return True
            return False
