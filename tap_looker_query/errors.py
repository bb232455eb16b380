"""Every error the tap raises, on one axis: worth another try, or final.

The decision is made once, where the failure is seen (the transport classifies each HTTP
answer, the result parsers each body, the download thread each dropped connection), by the
class it raises. Whoever reads a window then only asks `isinstance(exc, RetriableError)`.
"""

from __future__ import annotations

import re
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Sequence


class TapLookerError(Exception):
    """Base of the tap's own errors."""


class RetriableError(TapLookerError):
    """The same request may well succeed next time (the result, not the query, was at fault)."""


class FatalError(TapLookerError):
    """Retrying the same request will not help."""


# Looker's answers


class LookerError(TapLookerError):
    """Looker answered with an error; `status` is its HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status next to the message."""
        super().__init__(message)
        self.status = status


class LookerUnavailableError(LookerError, RetriableError):
    """A 5xx that outlasted the transport's own retries, or an answer with no status at all."""


class LookerRejectedError(LookerError, FatalError):
    """A 4xx: Looker understood the request and refused it."""


class NotFoundError(LookerRejectedError):
    """Looker answered 404."""


class LoginError(LookerError, FatalError):
    """Looker refused the API credentials, or the login answer made no sense."""


class RedirectError(LookerError, FatalError):
    """Looker (or something in front of it) answered a redirect, which the tap never follows.

    Following one would send the credentials, the token or the query to another address, and
    take that address's answer as Looker's.
    """


class TlsError(LookerError, FatalError):
    """TLS failed: a certificate that is not trusted, or https:// to a plain-HTTP server."""


class MalformedAnswerError(LookerError, FatalError):
    """Looker answered 200 with something that is not what its API documents (HTML, wrong types)."""


class LookerQueryError(FatalError):
    """Looker ran the query and reported an error: a `looker_error` row, a failed task."""


class QueryDroppedError(RetriableError):
    """Looker dropped the query from its per-user queue before it ran: sent again, it may run.

    Past 15 running queries per user, Looker queues further queries and drops those that wait
    over 600 s ("Query Timeouts and Queueing"). The error text of a dropped query is not
    documented, so a query error whose message speaks of Looker's queue is taken as one.
    """


#: What marks a query error as a drop from Looker's queue (see `QueryDroppedError`).
_DROPPED = re.compile(r"\bqueue(?:d|s)?\b", re.IGNORECASE)


def query_error(message: str) -> LookerQueryError | QueryDroppedError:
    """The error for a query Looker reported as failed: final, unless it was dropped unrun."""
    if _DROPPED.search(message):
        return QueryDroppedError(f"{message} (dropped from Looker's per-user queue: retried)")
    return LookerQueryError(message)


class QueryTimeoutError(TapLookerError):
    """A query task ran past `query_timeout` and was killed: the window is split in two."""


def status_error(message: str, status: int) -> LookerError:
    """The error for an HTTP error status: 404, other 4xx (final), 5xx (worth a retry)."""
    if status == 404:  # noqa: PLR2004
        return NotFoundError(message, status)
    if status < 500:  # noqa: PLR2004
        return LookerRejectedError(message, status)
    return LookerUnavailableError(message, status)


# Result bodies


class ResultError(RetriableError):
    """The body is not a complete, well-formed Looker result (a proxy page, a cut-off body)."""


class TruncatedResultError(ResultError):
    """The body ended before the result did (a dropped connection, a cut-off response)."""


class ConnectionLostError(RetriableError):
    """The connection failed or timed out while the query ran or its body streamed."""


class ValueMismatchError(FatalError, ValueError):
    """A value does not fit its field's type: the same query would return it again."""


# Configuration and streams


class SpecError(FatalError):
    """One or more query specs are invalid; `problems` holds one message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        """Keep every problem so the user can fix them all in one go."""
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class TerminatedError(BaseException):
    """SIGTERM or SIGINT: stop at the next safe point (not an error a stream may contain)."""

    def __init__(self, signum: int) -> None:
        """Remember the signal, for the exit status (128 + signum)."""
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class Stop(threading.Event):
    """Set when the run must stop; `signum` is the signal that asked for it."""

    signum = 15

    def request(self, signum: int) -> bool:
        """Ask for the stop; False when it was asked for already."""
        if self.is_set():
            return False
        self.signum = signum
        self.set()
        return True


def raise_if_stopped(stop: threading.Event) -> None:
    """Raise `TerminatedError` once a stop was asked for (see `run.Run.stop`)."""
    if stop.is_set():
        raise TerminatedError(getattr(stop, "signum", 15))


class StreamFailedError(TapLookerError):
    """A window (or a full-table query) could not be read completely; its stream stops there."""
