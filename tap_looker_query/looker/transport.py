"""The HTTP side: one retrying `requests.Session`, shared by looker-sdk calls and query runs.

The looker-sdk never retries, so its calls go through `Session.send` too (via `SdkTransport`).
`send` retries what is transient (connection errors, read timeouts, 429 and 5xx, honouring
`Retry-After`), logs in again once after a 401, and hands every other answer back; callers turn
an error status into the error class that says whether it is worth another try
(`errors.status_error`). It never follows a redirect (it would carry the credentials or the
query to another address) and bounds how long a body may take to arrive, not only each read.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlsplit

import requests
import urllib3.exceptions
from looker_sdk.rtl import api_settings, transport
from looker_sdk.rtl.requests_transport import NullAuth, RequestsTransport
from looker_sdk.sdk import constants as sdk_constants

from tap_looker_query.errors import RedirectError, TlsError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator, Mapping, MutableMapping

API_PATH = "/api/4.0"
USER_AGENT = "tap-looker-query"
#: HTTP statuses worth another try: rate limits and the errors proxies and Looker send
#: while overloaded or restarting.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Characters of a body quoted in error messages.
_SNIPPET = 300
#: Bytes asked for per read of a body; a read returns what has arrived, up to this.
CHUNK_SIZE = 256 * 1024


def instance_url(value: str) -> str:
    """The Looker instance URL in `value`, without a trailing `/api/...`.

    Raises:
        ValueError: not an http(s) URL, or it holds a user name or password. The message
            never repeats the password.
    """
    shown = "...@" + value.rsplit("@", 1)[1] if "@" in value else value
    parts = urlsplit(value.strip())
    if "@" in parts.netloc:
        msg = (
            "setting 'base_url': holds a user name or password (user:password@host); remove "
            "them, the tap logs in with client_id and client_secret"
        )
        raise ValueError(msg)
    try:
        _ = parts.port
    except ValueError:
        valid_port = False
    else:
        valid_port = True
    if parts.scheme not in {"http", "https"} or not parts.hostname or not valid_port:
        msg = (
            f"setting 'base_url': {shown!r} is not an http:// or https:// URL; use the "
            "instance URL, e.g. https://company.looker.com"
        )
        raise ValueError(msg)
    url = value.strip().rstrip("/")
    if url.endswith(("/api/4.0", "/api")):
        url = url.rsplit("/api", 1)[0]
    return url


@dataclass(frozen=True)
class ClientSettings:
    """What the client needs from the tap's config."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    verify_ssl: bool
    timeout: int
    max_retries: int
    max_retry_wait: float
    max_concurrent_queries: int
    query_mode: t.Literal["auto", "sync", "async"]
    query_timeout: float
    #: Not settings: the first backoff step, and the first pause between task polls.
    retry_base_wait: float = 1.0
    poll_interval: float = 0.5


@dataclass
class ClientStats:
    """Counters for the run summary."""

    retries: int = 0
    relogins: int = 0
    #: Inline runs moved to query tasks, by why: "read timeout" or "504".
    to_tasks: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_to_task(self, reason: str) -> None:
        """Count one inline run that became a query task."""
        with self.lock:
            self.to_tasks[reason] = self.to_tasks.get(reason, 0) + 1

    def count_retry(self) -> None:
        """Count one retried request."""
        with self.lock:
            self.retries += 1

    def count_relogin(self) -> None:
        """Count one login forced by a 401."""
        with self.lock:
            self.relogins += 1


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class Retrier:
    """Exponential backoff with full jitter, honouring `Retry-After`, capped per wait."""

    def __init__(
        self,
        settings: ClientSettings,
        logger: logging.Logger,
        stats: ClientStats,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Retry up to `settings.max_retries` times, never waiting more than the cap."""
        self._settings = settings
        self._logger = logger
        self._stats = stats
        self._sleep = sleep

    @property
    def max_retries(self) -> int:
        """How many retries one call may make."""
        return self._settings.max_retries

    def wait(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        """Log the retry with its reason and sleep before attempt `attempt + 1`."""
        cap = self._settings.max_retry_wait
        # Full jitter on an exponential step; after Looker's Retry-After, so that requests
        # turned away together do not all come back at the same moment.
        jitter = random.uniform(0, min(cap, self._settings.retry_base_wait * 2**attempt))  # noqa: S311 - jitter, not crypto
        delay = min(cap, jitter if retry_after is None else retry_after + jitter)
        self._stats.count_retry()
        self._logger.warning(
            "Retrying (%d of %d) in %.1f s: %s",
            attempt + 1,
            self._settings.max_retries,
            delay,
            reason,
        )
        self._sleep(delay)


def describe_response(response: requests.Response) -> str:
    """`HTTP 502 from POST /api/4.0/...: <Looker's message or the body's start>`."""
    request = response.request
    path = urlparse(response.url).path
    text = ""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:200]
    else:
        text = str(body.get("message") or body) if isinstance(body, dict) else str(body)[:200]
    return f"HTTP {response.status_code} from {request.method} {path}: {text}".rstrip(": ")


def snippet_of(response: requests.Response) -> str:
    """Looker's message in an error body, or the body's start."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    if isinstance(body, dict):
        errors = body.get("errors") or []
        messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
        return "; ".join(messages) or str(body.get("message") or body)[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict) and "looker_error" in body[0]:
        return str(body[0]["looker_error"])
    return str(body)[:300]


def json_kind(value: object) -> str:
    """How an error message names a JSON value's type: `a JSON array`, `the string 'oops'`."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"the value {value!r}"


class BodyDeadlineError(requests.ConnectionError):
    """A body took longer than its deadline to arrive (a server that trickles it)."""


def iter_body(
    response: requests.Response, deadline: float, setting: str, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The body, decoded, in chunks as they arrive; abandoned after `deadline` s of waiting.

    The per-read timeout alone lets a server that sends a byte per read keep a body going for
    hours. Only time spent waiting for the server counts, not time the caller holds a chunk.
    `read1` returns after at most one read from the socket, so the deadline is checked at least
    once per per-read timeout.

    Raises:
        BodyDeadlineError: the body took longer than `deadline` (named by `setting`).
        requests.RequestException: the connection failed (as `iter_content` raises them).
    """
    raw = response.raw
    waited = 0.0
    received = 0
    try:
        while True:
            began = time.monotonic()
            chunk = raw.read1(chunk_size, decode_content=True)
            waited += time.monotonic() - began
            if not chunk:
                return
            received += len(chunk)
            if waited > deadline:
                path = urlparse(response.url).path
                msg = (
                    f"the answer to {response.request.method} {path} took longer than {setting} "
                    f"({deadline:.0f} s) to arrive; abandoned after {received} bytes"
                )
                raise BodyDeadlineError(msg)
            yield chunk
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _without_credentials(location: str) -> str:
    """A URL without its user info, query and fragment (where a token or password may sit)."""
    parts = urlsplit(location)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path


def _redirect_error(response: requests.Response) -> RedirectError:
    request = response.request
    path = urlparse(response.url).path
    location = response.headers.get("Location")
    where = f"to {_without_credentials(location)}" if location else "without a Location"
    msg = (
        f"Looker answered {request.method} {path} with HTTP {response.status_code}, a redirect "
        f"{where}; the tap follows no redirects (they would carry the credentials or the query "
        "elsewhere): set base_url to the address Looker itself answers on"
    )
    return RedirectError(msg, response.status_code)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The `ssl.SSLError` a requests SSLError wraps (in its args or its causes)."""
    seen: list[BaseException] = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, ssl.SSLError):
            return current
        seen += [arg for arg in current.args if isinstance(arg, BaseException)]
        seen += [e for e in (current.__cause__, current.__context__) if e is not None]
        seen += [e for e in [getattr(current, "reason", None)] if isinstance(e, BaseException)]
    return None


def _tls_error(exc: requests.exceptions.SSLError, url: str, *, handshaken: bool) -> TlsError | None:
    """The final error for a TLS failure, or None when it looks transient.

    A certificate or protocol error is final. A connection closed mid-handshake is transient
    once a handshake with the server has succeeded; before that it is what a plain-HTTP server
    does with https://, so it is final too.
    """
    cause = _ssl_cause(exc)
    if handshaken and isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return None
    parts = urlsplit(url)
    reason = (cause.strerror or cause) if cause is not None else exc
    msg = (
        f"TLS failed with {parts.scheme}://{parts.netloc}: {reason}. Check that base_url's scheme "
        "fits the server (https:// only for a TLS server) and that its certificate is trusted "
        "(verify_ssl, REQUESTS_CA_BUNDLE)"
    )
    return TlsError(msg)


class Session:
    """One `requests.Session` with retries, shared by the SDK transport and streamed runs."""

    def __init__(
        self,
        settings: ClientSettings,
        retrier: Retrier,
        logger: logging.Logger,
    ) -> None:
        """Open a connection pool sized for the concurrent queries."""
        self.settings = settings
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=max(8, settings.max_concurrent_queries * 2)
        )
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.http.verify = settings.verify_ssl
        self.http.headers["User-Agent"] = USER_AGENT
        self.retrier = retrier
        self.logger = logger
        self.on_unauthorized: Callable[[str | None], dict[str, str]] | None = None
        #: A request has been answered: TLS (if any) worked with this server once.
        self._handshaken = False

    def send(  # noqa: PLR0913
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, t.Any] | None = None,
        data: bytes | str | Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        authenticated: bool = True,
        retry_read_timeouts: bool = True,
    ) -> requests.Response:
        """Send a request, retrying transient failures; return the final response.

        With `retry_read_timeouts` false (a run in `auto` mode, which has a better way to wait
        for a slow query), a read timeout is raised and a 504 returned at once.

        Transient: connection errors, read timeouts, 429/500/502/503/504 (Retry-After honoured).
        A 401 on an authenticated call logs in again once (Looker revoked the token early).
        Other statuses come back to the caller, which knows what they mean there. Unless
        `stream`, the body is read here and must arrive within `timeout` (the setting); a
        streamed body is the caller's to read, with `iter_body` and its own deadline.

        Raises:
            RedirectError: any 3xx; redirects are never followed.
            TlsError: TLS failed in a way another try will not mend (not retried).
            requests.RequestException: a transient failure outlasted the retries.
        """
        request_headers = dict(headers or {})
        relogged = False
        attempt = 0
        path = urlparse(url).path
        while True:
            try:
                response = self._attempt(
                    method,
                    url,
                    headers=request_headers,
                    params=params,
                    data=data,
                    stream=stream,
                    timeout=timeout,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                if attempt >= self.retrier.max_retries or (
                    isinstance(exc, requests.ReadTimeout) and not retry_read_timeouts
                ):
                    raise
                self.retrier.wait(attempt, f"{method} {path}: {type(exc).__name__}: {exc}")
                attempt += 1
                continue
            status = response.status_code
            if 300 <= status < 400:  # noqa: PLR2004
                response.close()
                raise _redirect_error(response)
            if status == 401 and authenticated and not relogged and self.on_unauthorized:  # noqa: PLR2004
                response.close()
                self.logger.warning("Looker rejected the API token (401); logging in again")
                request_headers.update(self.on_unauthorized(request_headers.get("Authorization")))
                relogged = True
                continue
            slow = status == 504 and not retry_read_timeouts  # noqa: PLR2004 - gateway timeout
            if status in RETRYABLE_STATUSES and attempt < self.retrier.max_retries and not slow:
                reason = describe_response(response)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                response.close()
                self.retrier.wait(attempt, reason, retry_after)
                attempt += 1
                continue
            return response

    def _attempt(  # noqa: PLR0913
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, t.Any] | None,
        data: bytes | str | Mapping[str, str] | None,
        stream: bool,
        timeout: float | None,
    ) -> requests.Response:
        """One try: the response, its body read unless `stream`; redirects are not followed.

        Raises:
            TlsError: TLS failed in a way another try will not mend.
        """
        try:
            response = self.http.request(
                method,
                url,
                headers=headers,
                params=params,
                data=data,
                stream=True,
                timeout=timeout or self.settings.timeout,
                auth=NullAuth(),
                allow_redirects=False,
                # Given per request: requests lets REQUESTS_CA_BUNDLE override a session's
                # verify=False (psf/requests#3829), which would ignore verify_ssl.
                verify=self.settings.verify_ssl,
            )
            if not stream:
                self._read_body(response)
        except requests.exceptions.SSLError as exc:
            fatal = _tls_error(exc, url, handshaken=self._handshaken)
            if fatal is not None:
                raise fatal from exc
            raise
        self._handshaken = True
        return response

    def _read_body(self, response: requests.Response) -> None:
        """Read the whole body into `response.content`, within `timeout` of waiting for it."""
        try:
            body = b"".join(iter_body(response, self.settings.timeout, "timeout"))
        finally:
            response.close()
        # What requests itself does for a body read whole (stream=False).
        response._content = body  # noqa: SLF001
        response._content_consumed = True  # type: ignore[attr-defined]  # noqa: SLF001

    def close(self) -> None:
        """Close pooled connections."""
        self.http.close()


class SdkTransport(RequestsTransport):
    """The looker-sdk transport, sending through `Session.send` so SDK calls retry too."""

    def __init__(self, settings: transport.PTransportSettings, session: Session) -> None:
        """Send through `session`."""
        super().__init__(settings, session.http)
        self._session = session

    def request(  # noqa: PLR0913, PLR0917 - the SDK transport's signature
        self,
        method: transport.HttpMethod,
        path: str,
        query_params: MutableMapping[str, str] | None = None,
        body: bytes | None = None,
        authenticator: transport.TAuthenticator = None,
        transport_options: transport.TransportOptions | None = None,
    ) -> transport.Response:
        """The SDK's request, sent (and retried) by `Session.send`."""
        headers: dict[str, str] = {}
        if authenticator:
            headers.update(authenticator(transport_options or {}))
        if transport_options and transport_options.get("headers"):
            headers.update(transport_options["headers"])
        timeout = (transport_options or {}).get("timeout") or self.settings.timeout
        try:
            response = self._session.send(
                method.name,
                path,
                headers=headers,
                params=query_params,
                data=body,
                timeout=timeout,
                authenticated=authenticator is not None,
            )
        except OSError as exc:
            return transport.Response(
                ok=False,
                value=bytes(str(exc), encoding="utf-8"),
                response_mode=transport.ResponseMode.STRING,
            )
        value = response.content
        if not response.ok and authenticator is None:
            # The SDK makes a failed login's body its error message verbatim; say what failed.
            value = describe_response(response).encode("utf-8")
        result = transport.Response(
            ok=response.ok,
            value=value,
            response_mode=transport.response_mode(response.headers.get("content-type")),
        )
        encoding = requests.utils.get_encoding_from_headers(response.headers)
        if encoding:
            result.encoding = encoding
        result.status = response.status_code  # type: ignore[attr-defined]
        return result


class SdkSettings(api_settings.ApiSettings):
    """ApiSettings from the tap's config, never from looker.ini or the environment."""

    def __init__(self, settings: ClientSettings) -> None:
        """Settings from `settings` only."""
        self._tap_settings = settings
        super().__init__(filename="", sdk_version=sdk_constants.sdk_version, env_prefix=None)
        self.agent_tag = f"{USER_AGENT} ({transport.AGENT_PREFIX} {sdk_constants.sdk_version})"

    def read_config(self) -> api_settings.SettingsConfig:
        """The SDK's settings, from the tap's."""
        settings = self._tap_settings
        return {
            "base_url": settings.base_url,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "verify_ssl": "true" if settings.verify_ssl else "false",
            "timeout": str(settings.timeout),
        }
