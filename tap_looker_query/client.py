"""`LookerClient`: the looker-sdk session, retries, re-login, and streamed query runs.

The looker-sdk never retries and its `SDKError` keeps the body but not the HTTP status, so
every call, the SDK's own and our streamed runs alike, goes through `send`, which sees the
status at the transport and retries what is transient. Nothing here knows about Singer.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import requests
from looker_sdk.error import SDKError
from looker_sdk.rtl import api_settings, auth_session, auth_token, serialize, transport
from looker_sdk.rtl.requests_transport import NullAuth, RequestsTransport
from looker_sdk.sdk import constants as sdk_constants
from looker_sdk.sdk.api40 import methods as methods40

from tap_looker_query.schema import LookerField

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator, Mapping, MutableMapping

API_PATH = "/api/4.0"
USER_AGENT = "tap-looker-query"
#: HTTP statuses worth another try: rate limits and the errors proxies and Looker send
#: while overloaded or restarting.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: `query_task_results` while the task runs: 202 in API 4.0 today, 204 in older releases.
_NOT_READY = frozenset({202, 204})
_EXPLORE_FIELDS = (
    "name,model_name,fields(dimensions({f}),measures({f}),filters({f}),parameters({f}))".format(
        f="name,label,label_short,type,category,is_numeric,is_timeframe,hidden,description"
    )
)


class LookerError(Exception):
    """Looker answered with an error that retrying will not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the HTTP status next to the message."""
        super().__init__(message)
        self.status = status


class NotFoundError(LookerError):
    """Looker answered 404."""


class LoginError(LookerError):
    """Looker refused the API credentials."""

    def __init__(self, message: str, status: int | None = 404) -> None:
        """A refused login is final: retrying the same credentials will not help."""
        super().__init__(message, status)


class QueryTimeoutError(LookerError):
    """A query task ran past `query_timeout` and was killed."""


class QueryTaskError(LookerError):
    """A query task ended in `error` or `killed`."""


@dataclass(frozen=True)
class ClientSettings:
    """What the client needs from the tap's config."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    verify_ssl: bool = True
    timeout: int = 120
    max_retries: int = 5
    max_retry_wait: float = 60.0
    retry_base_wait: float = 1.0
    max_concurrent_queries: int = 4
    query_mode: str = "auto"
    query_timeout: float = 600.0
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
        if retry_after is not None:
            delay = min(retry_after, cap)
        else:
            delay = random.uniform(0, min(cap, self._settings.retry_base_wait * 2**attempt))  # noqa: S311 - jitter, not crypto
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


class _Transport(RequestsTransport):
    """The looker-sdk transport, sending through `Session.send` so SDK calls retry too."""

    def __init__(self, settings: transport.PTransportSettings, session: Session) -> None:
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


class _Settings(api_settings.ApiSettings):
    """ApiSettings from the tap's config, never from looker.ini or the environment."""

    def __init__(self, settings: ClientSettings) -> None:
        self._tap_settings = settings
        super().__init__(filename="", sdk_version=sdk_constants.sdk_version, env_prefix=None)
        self.agent_tag = f"{USER_AGENT} ({transport.AGENT_PREFIX} {sdk_constants.sdk_version})"

    def read_config(self) -> api_settings.SettingsConfig:
        settings = self._tap_settings
        return {
            "base_url": settings.base_url,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "verify_ssl": "true" if settings.verify_ssl else "false",
            "timeout": str(settings.timeout),
        }


def _sdk_message(exc: SDKError) -> str:
    return str(getattr(exc, "message", None) or exc).strip()


@dataclass(frozen=True)
class QueryBody:
    """A Looker query as the run endpoint takes it (`WriteQuery`)."""

    model: str
    view: str
    fields: tuple[str, ...]
    filters: Mapping[str, str]
    sorts: tuple[str, ...]
    limit: int
    query_timezone: str
    filter_expression: str | None = None
    client_id: str | None = None

    def as_json(self) -> dict[str, t.Any]:
        """The request body; `limit` is a string in Looker's API."""
        body: dict[str, t.Any] = {
            "model": self.model,
            "view": self.view,
            "fields": list(self.fields),
            "filters": dict(self.filters),
            "sorts": list(self.sorts),
            "limit": str(self.limit),
            "query_timezone": self.query_timezone,
        }
        if self.filter_expression:
            body["filter_expression"] = self.filter_expression
        if self.client_id:
            body["client_id"] = self.client_id
        return body


class LookerClient:
    """Everything the tap asks of Looker, over one authenticated, retrying session."""

    def __init__(self, settings: ClientSettings, logger: logging.Logger) -> None:
        """Prepare the session; nothing is sent until the first call."""
        self.settings = settings
        self.logger = logger
        self.stats = ClientStats()
        self._retrier = Retrier(settings, logger, self.stats)
        self._session = Session(settings, self._retrier, logger)
        api = _Settings(settings)
        self._transport = _Transport(api, self._session)
        self._auth = auth_session.AuthSession(api, self._transport, serialize.deserialize40, "4.0")
        self.sdk = methods40.Looker40SDK(
            self._auth, serialize.deserialize40, serialize.serialize40, self._transport, "4.0"
        )
        self._session.on_unauthorized = self._relogin
        self._login_lock = threading.Lock()
        self.query_slots = threading.BoundedSemaphore(settings.max_concurrent_queries)
        self._api_root = settings.base_url.rstrip("/") + API_PATH

    # Authentication

    def _relogin(self, rejected: str | None) -> dict[str, str]:
        """Log in again after a 401, once for all the requests that carried the dead token."""
        with self._login_lock:
            current = self._auth.token.access_token
            if rejected is None or (current and rejected.endswith(current)):
                self.stats.count_relogin()
                self._auth.token = auth_token.AuthToken()
        return self.auth_headers()

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header, logging in first when the token is missing or expired.

        Raises:
            LoginError: Looker refused the credentials.
        """
        with self._login_lock:
            try:
                return dict(self._auth.authenticate({}))
            except SDKError as exc:
                message = _sdk_message(exc)
                if "not found" in message.lower():
                    message = (
                        "Looker refused the API credentials (404 from /login): check "
                        "client_id and client_secret, and that base_url is the instance URL "
                        "without /api/..."
                    )
                raise LoginError(message) from exc

    def check_connection(self) -> str:
        """Log in and return who we are (`GET /user`)."""
        self.auth_headers()
        try:
            user = self.sdk.me(fields="id,display_name,email")
        except SDKError as exc:
            raise LookerError(_sdk_message(exc)) from exc
        return f"{user.display_name or user.email or 'API user'} (id {user.id})"

    def logout(self) -> None:
        """End the API session and close connections; safe to call more than once."""
        try:
            if self._auth.is_authenticated:
                self._auth.logout()
        except (SDKError, OSError) as exc:
            self.logger.debug("Logout failed: %s", exc)
        finally:
            self._session.close()

    # Metadata

    def explore_fields(self, model: str, explore: str) -> dict[str, LookerField]:
        """Every field of an explore, by name (`lookml_model_explore`).

        Raises:
            NotFoundError: Looker answered 404 (unknown model or explore, or an explore built
                on internal tables, as some System Activity explores are).
            LookerError: any other error.
        """
        self.auth_headers()
        try:
            result = self.sdk.lookml_model_explore(model, explore, fields=_EXPLORE_FIELDS)
        except SDKError as exc:
            message = _sdk_message(exc)
            if message.lower().startswith("not found"):
                raise NotFoundError(message, 404) from exc
            raise LookerError(message) from exc
        fields: dict[str, LookerField] = {}
        groups = result.fields
        if groups is None:
            return fields
        for category, items in (
            ("dimension", groups.dimensions),
            ("measure", groups.measures),
            ("filter", groups.filters),
            ("parameter", groups.parameters),
        ):
            for item in items or []:
                data = {key: getattr(item, key, None) for key in LookerField.__annotations__}
                field_ = LookerField.from_api(data, category=str(item.category or category))
                fields.setdefault(field_.name, field_)
        return fields

    def model_explores(self, model: str) -> list[str] | None:
        """Explore names of a model, or None when the model does not exist."""
        self.auth_headers()
        try:
            result = self.sdk.lookml_model(model, fields="name,explores(name)")
        except SDKError as exc:
            if _sdk_message(exc).lower().startswith("not found"):
                return None
            raise LookerError(_sdk_message(exc)) from exc
        return [explore.name for explore in result.explores or [] if explore.name]

    def model_names(self) -> list[str]:
        """Every model the API user can see, internal ones (System Activity) included."""
        self.auth_headers()
        try:
            models = self.sdk.all_lookml_models(fields="name", include_internal=True)
        except SDKError as exc:
            raise LookerError(_sdk_message(exc)) from exc
        return [model.name for model in models if model.name]

    # Saved content

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> t.Any:  # noqa: ANN401
        """`GET` an API path and return its JSON.

        Raises:
            NotFoundError: Looker answered 404.
            LookerError: any other error.
        """
        return self._api("GET", path, params=params).json()

    def look(self, look_id: str) -> dict[str, t.Any]:
        """A Look with its query (`GET /looks/{id}`)."""
        return dict(self.get_json(f"/looks/{quote(look_id)}", {"fields": "id,title,query"}))

    def saved_query(self, query_id: str) -> dict[str, t.Any]:
        """A saved query by id (`GET /queries/{id}`)."""
        return dict(self.get_json(f"/queries/{quote(query_id)}"))

    def query_for_slug(self, slug: str) -> dict[str, t.Any]:
        """A saved query by slug (`GET /queries/slug/{slug}`)."""
        return dict(self.get_json(f"/queries/slug/{quote(slug)}"))

    def dashboard(self, dashboard_id: str) -> tuple[dict[str, t.Any], list[dict[str, t.Any]]]:
        """A dashboard (with its filters) and its elements (tiles)."""
        path = f"/dashboards/{quote(dashboard_id, safe=':')}"
        dashboard = dict(self.get_json(path, {"fields": "id,title,dashboard_filters"}))
        elements = list(self.get_json(f"{path}/dashboard_elements"))
        return dashboard, elements

    # Query runs

    def run_url(self, result_format: str) -> str:
        """The inline-run endpoint for a result format."""
        return f"{self._api_root}/queries/run/{quote(result_format)}"

    def json_bi_fields(self, body: QueryBody) -> dict[str, LookerField]:
        """Field metadata from a `json_bi` run (the fallback when explore metadata is 404)."""
        with self.query_slots:
            response = self._post_run(self.run_url("json_bi"), body, stream=False)
            try:
                payload = response.json()
            except ValueError as exc:
                msg = f"json_bi run answered a non-JSON body: {response.text[:200]}"
                raise LookerError(msg) from exc
        rows = payload.get("rows") if isinstance(payload, dict) else payload
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            error = rows[0].get("looker_error")
            if error:
                msg = f"Looker reported an error: {error}"
                raise LookerError(msg)
        groups = (payload.get("metadata") or {}).get("fields") or {}
        # JsonBiField has no is_numeric: the one row's values show which min/max are numbers.
        sample = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
        fields: dict[str, LookerField] = {}
        for category, key in (("dimension", "dimensions"), ("measure", "measures")):
            for item in groups.get(key) or []:
                value = sample.get(item.get("name"))
                if isinstance(value, dict):  # a json_detail-style cell, {"value": ...}
                    value = value.get("value")
                field_ = LookerField.from_json_bi(
                    item, category=item.get("category") or category, sample=value
                )
                fields[field_.name] = field_
        return fields

    def _check(self, response: requests.Response) -> requests.Response:
        if response.status_code >= 400:  # noqa: PLR2004
            message = describe_response(response)
            response.close()
            if response.status_code == 404:  # noqa: PLR2004
                raise NotFoundError(message, 404)
            raise LookerError(message, response.status_code)
        return response

    def _post_run(
        self, url: str, body: QueryBody, *, stream: bool, retry_read_timeouts: bool = True
    ) -> requests.Response:
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        response = self._session.send(
            "POST",
            url,
            headers=headers,
            params={"apply_formatting": "false", "cache": "false", "limit": str(body.limit)},
            data=serialize_body(body),
            stream=stream,
            retry_read_timeouts=retry_read_timeouts,
        )
        return self._check(response)

    def _api(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, t.Any] | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        data = json.dumps(json_body).encode("utf-8") if json_body is not None else None
        response = self._session.send(
            method, self._api_root + path, headers=headers, params=params, data=data, stream=stream
        )
        return self._check(response)

    def open_run(self, body: QueryBody, result_format: str) -> requests.Response:
        """Run a query and return the response with its body not yet read.

        `query_mode` decides how: `sync` runs inline; `async` runs a Looker query task; `auto`
        runs inline and, when Looker takes longer than `timeout` to answer, runs the query as
        a task instead (no HTTP request then has to outlive a long query). The caller reads
        `response.raw` incrementally and must close the response.

        Raises:
            QueryTimeoutError: the task ran past `query_timeout` (it was killed).
        """
        mode = self.settings.query_mode
        if mode != "async":
            try:
                response = self._post_run(
                    self.run_url(result_format),
                    body,
                    stream=True,
                    retry_read_timeouts=mode == "sync",
                )
            except requests.ReadTimeout:
                self.logger.info(
                    "Looker took over %d s to answer; running the query as a query task",
                    self.settings.timeout,
                )
            else:
                response.raw.decode_content = True
                return response
        return self._run_task(body, result_format)

    def _run_task(self, body: QueryBody, result_format: str) -> requests.Response:
        """Create the query, run it as a task, poll until done, and open its results."""
        query = self._api("POST", "/queries", json_body=body.as_json(), params={"fields": "id"})
        query_id = str(query.json()["id"])
        task = self._api(
            "POST",
            "/query_tasks",
            json_body={"query_id": query_id, "result_format": result_format, "source": USER_AGENT},
            params={"cache": "false", "apply_formatting": "false", "fields": "id,status"},
        ).json()
        task_id = str(task["id"])
        started = time.monotonic()
        wait = self.settings.poll_interval
        expired_seen = 0
        while True:
            if time.monotonic() - started > self.settings.query_timeout:
                self._kill(task_id)
                msg = (
                    f"the query ran longer than query_timeout ({self.settings.query_timeout:.0f}"
                    f" s); Looker query task {task_id} was killed"
                )
                raise QueryTimeoutError(msg)
            status = str(
                self._api("GET", f"/query_tasks/{task_id}", params={"fields": "id,status"}).json()[
                    "status"
                ]
            )
            if status == "complete":
                break
            if status in {"error", "killed", "failure"}:
                raise QueryTaskError(self._task_error(task_id, status))
            if status == "expired":
                # Looker sometimes reports `expired` for a moment right before `complete`.
                expired_seen += 1
                if expired_seen > 3:  # noqa: PLR2004
                    msg = f"Looker query task {task_id} expired before it completed"
                    raise QueryTaskError(msg)
            time.sleep(wait)
            wait = min(wait * 1.5, 5.0)
        response = self._api("GET", f"/query_tasks/{task_id}/results", stream=True)
        if response.status_code in _NOT_READY:  # not finished after all: poll again
            response.close()
            return self._task_results_when_ready(task_id, started)
        response.raw.decode_content = True
        return response

    def _task_results_when_ready(self, task_id: str, started: float) -> requests.Response:
        while time.monotonic() - started <= self.settings.query_timeout:
            time.sleep(self.settings.poll_interval)
            response = self._api("GET", f"/query_tasks/{task_id}/results", stream=True)
            if response.status_code not in _NOT_READY:
                response.raw.decode_content = True
                return response
            response.close()
        self._kill(task_id)
        msg = f"the query ran longer than query_timeout; Looker query task {task_id} was killed"
        raise QueryTimeoutError(msg)

    def _task_error(self, task_id: str, status: str) -> str:
        try:
            response = self._api("GET", f"/query_tasks/{task_id}/results")
            detail = snippet_of(response)
        except LookerError as exc:
            detail = str(exc)
        return f"Looker query task {task_id} ended with status '{status}': {detail}"

    def _kill(self, task_id: str) -> None:
        try:
            self._api("DELETE", f"/running_queries/{task_id}")
        except (LookerError, requests.RequestException) as exc:
            self.logger.warning("Could not kill Looker query task %s: %s", task_id, exc)

    def stream_run(self, body: QueryBody, result_format: str) -> Iterator[bytes]:
        """The body of a query run in chunks, within one concurrent-query slot."""
        with self.query_slots:
            response = self.open_run(body, result_format)
            try:
                yield from response.iter_content(chunk_size=256 * 1024)
            finally:
                response.close()


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


def serialize_body(body: QueryBody) -> bytes:
    """JSON request body."""
    return json.dumps(body.as_json()).encode("utf-8")
