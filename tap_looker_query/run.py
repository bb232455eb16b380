"""`Run`: what one invocation of the tap owns, passed explicitly to every stream.

The settings, the Looker client and its query runner (created on first use), the download
threads, the moment the run started (incremental windows stop there), the streams in the order
the SDK syncs them (so each can let the next one start its queries early), and the failures
that decide the exit status.
"""

from __future__ import annotations

import datetime as dt
import signal
import typing as t

from tap_looker_query.engine.fetch import Prefetcher
from tap_looker_query.errors import LookerError, Stop
from tap_looker_query.looker.client import LookerClient
from tap_looker_query.looker.runs import QueryRuns

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from tap_looker_query.settings import Settings


class Run:
    """One invocation: its resources, its clock, and what failed."""

    def __init__(
        self, settings: Settings, logger: logging.Logger, started: dt.datetime | None = None
    ) -> None:
        """A run with `settings` that started now (or at `started`, for tests and benchmarks)."""
        self.settings = settings
        self.logger = logger
        self.started = started or dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.failures: dict[str, str] = {}
        #: Set by `stop` (SIGTERM, SIGINT): no query starts after it, running tasks are killed.
        self.stopping = Stop()
        self._client: LookerClient | None = None
        self._prefetcher: Prefetcher | None = None
        self._order: list[tuple[str, Callable[[], bool]]] = []

    @property
    def client(self) -> LookerClient:
        """The Looker client, created on first use.

        Raises:
            ConfigValidationError: the credentials are missing.
        """
        if self._client is None:
            self._client = LookerClient(self.settings.client_settings(), self.logger)
        return self._client

    @property
    def prefetcher(self) -> Prefetcher:
        """The download threads (as many as queries may be in flight)."""
        if self._prefetcher is None:
            runs = QueryRuns(self.client, self.logger, self.stopping)
            self._prefetcher = Prefetcher(
                runs.stream_run, self.settings.max_concurrent_queries, self.stopping
            )
        return self._prefetcher

    def sync_order(self, streams: list[tuple[str, Callable[[], bool]]]) -> None:
        """The streams in the order they sync, each with its `warm_up` (False: not selected)."""
        self._order = list(streams)

    def warm_up_after(self, name: str) -> None:
        """Let the first selected stream synced after `name` start its first queries now."""
        names = [stream for stream, _warm_up in self._order]
        for following, warm_up in self._order[names.index(name) + 1 :]:
            try:
                if warm_up():
                    return
            except (ValueError, LookerError) as exc:  # it reports this itself when it runs
                self.logger.debug("%s: no warm-up: %s", following, exc)
                return

    def stop(self, signum: int) -> None:
        """Stop soon (SIGTERM, SIGINT), once.

        No new query starts, running query tasks are killed, streams stop at their next batch;
        the tap then writes the STATE of what was emitted and exits.
        """
        if not self.stopping.request(signum):
            return
        self.logger.warning(
            "Received %s: stopping (no new queries; running query tasks are killed)",
            signal.Signals(signum).name,
        )

    def record_failure(self, stream: str, reason: str) -> None:
        """A stream stopped on an error; the run goes on and exits non-zero at the end."""
        self.failures[stream] = reason
        self.logger.error("%s: stream stopped: %s", stream, reason)

    def close(self) -> None:
        """Stop the download threads and log out."""
        if self._prefetcher is not None:
            self._prefetcher.close()
        if self._client is not None:
            stats = self._client.stats
            if stats.retries or stats.relogins or stats.to_tasks:
                moved = ", ".join(f"{n} after a {why}" for why, n in stats.to_tasks.items())
                self.logger.info(
                    "Looker API: %d request(s) retried, %d new login(s) after a 401, "
                    "%d run(s) moved to query tasks%s",
                    stats.retries,
                    stats.relogins,
                    sum(stats.to_tasks.values()),
                    f" ({moved})" if moved else "",
                )
            self._client.logout()
