"""The HTTP side: one retrying `requests.Session`, shared by looker-sdk calls and query runs.

The looker-sdk never retries, so its calls go through `Session.send` too (via `SdkTransport`).
`send` retries what is transient (connection errors, read timeouts, 429 and 5xx, honouring
`Retry-After`), logs in again once after a 401, and hands every other answer back; callers turn
an error status into the error class that says whether it is worth another try
(`errors.status_error`).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
from looker_sdk.rtl import api_settings, transport
from looker_sdk.rtl.requests_transport import NullAuth, RequestsTransport
from looker_sdk.sdk import constants as sdk_constants

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping, MutableMapping

API_PATH = "/api/4.0"
USER_AGENT = "tap-looker-query"
#: HTTP statuses worth another try: rate limits and the errors proxies and Looker send
#: while overloaded or restarting.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Characters of a body quoted in error messages.
_SNIPPET = 300


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

        Transient: connection errors, read timeouts, 429/500/502/503/504 (Retry-After honoured).
        A 401 on an authenticated call logs in again once (Looker revoked the token early).
        Other statuses come back to the caller, which knows what they mean there.
        """
        request_headers = dict(headers or {})
        relogged = False
        attempt = 0
        path = urlparse(url).path
        while True:
            try:
                response = self.http.request(
                    method,
                    url,
                    headers=request_headers,
                    params=params,
                    data=data,
                    stream=stream,
                    timeout=timeout or self.settings.timeout,
                    auth=NullAuth(),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.retrier.max_retries or (
                    isinstance(exc, requests.ReadTimeout) and not retry_read_timeouts
                ):
                    raise
                self.retrier.wait(attempt, f"{method} {path}: {type(exc).__name__}: {exc}")
                attempt += 1
                continue
            status = response.status_code
            if status == 401 and authenticated and not relogged and self.on_unauthorized:  # noqa: PLR2004
                response.close()
                self.logger.warning("Looker rejected the API token (401); logging in again")
                request_headers.update(self.on_unauthorized(request_headers.get("Authorization")))
                relogged = True
                continue
            if status in RETRYABLE_STATUSES and attempt < self.retrier.max_retries:
                reason = describe_response(response)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                response.close()
                self.retrier.wait(attempt, reason, retry_after)
                attempt += 1
                continue
            return response

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
        result = transport.Response(
            ok=response.ok,
            value=response.content,
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
