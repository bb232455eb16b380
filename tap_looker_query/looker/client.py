"""`LookerClient`: login, field metadata and saved content, over the retrying session.

Query runs (inline and as query tasks) are in `runs`. Nothing here knows about Singer.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import typing as t
import warnings
from urllib.parse import quote, urlsplit

import urllib3.exceptions
from looker_sdk.error import SDKError
from looker_sdk.rtl import auth_session, auth_token, serialize
from looker_sdk.sdk.api40 import methods as methods40

from tap_looker_query.errors import (
    LoginError,
    LookerError,
    MalformedAnswerError,
    NotFoundError,
    status_error,
)
from tap_looker_query.looker.transport import (
    API_PATH,
    ClientSettings,
    ClientStats,
    Retrier,
    SdkSettings,
    SdkTransport,
    Session,
    describe_response,
    json_kind,
    snippet_of,
)
from tap_looker_query.schema import LookerField

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    import requests

    from tap_looker_query.looker.query import QueryBody

_FIELD_KEYS = "name,label,label_short,type,category,is_numeric,is_timeframe,hidden,description"
_EXPLORE_FIELDS = (
    "name,model_name,fields(dimensions({f}),measures({f}),filters({f}),parameters({f}))".format(
        f=f"{_FIELD_KEYS},convert_tz"
    )
)


#: What the SDK raises for a 200 whose body is not what the API documents: not JSON
#: (`DeserializeError`), or JSON of the wrong shape (cattrs' validation errors, an
#: `ExceptionGroup`, or a plain `TypeError`/`ValueError` from a field's converter).
_MALFORMED = (serialize.DeserializeError, TypeError, ValueError, AttributeError, ExceptionGroup)

T = t.TypeVar("T")


def _sdk_message(exc: SDKError) -> str:
    return str(getattr(exc, "message", None) or exc).strip()


def _first_line(exc: BaseException) -> str:
    """The gist of an error; for cattrs' groups, the first leaf and where it happened."""
    where = ""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    notes = getattr(exc, "__notes__", None)
    if notes:
        where = f" ({notes[-1]})"
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else type(exc).__name__
    return f"{text}{where}"[:300]


def _deserialized(what: str, call: Callable[[], T]) -> T:
    """The SDK's answer to `call`, or an error naming `what` when the answer is malformed.

    Raises:
        MalformedAnswerError: Looker answered 200 with something that is not what its API
            documents (HTML from a proxy, wrong types).
    """
    try:
        return call()
    except _MALFORMED as exc:
        msg = f"Looker's answer to {what} is not what its API documents: {_first_line(exc)}"
        raise MalformedAnswerError(msg) from exc


def _is_loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return host is not None
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LookerClient:
    """Everything the tap asks of Looker, over one authenticated, retrying session."""

    def __init__(self, settings: ClientSettings, logger: logging.Logger) -> None:
        """Prepare the session; nothing is sent until the first call."""
        self.settings = settings
        self.logger = logger
        self.stats = ClientStats()
        self._retrier = Retrier(settings, logger, self.stats)
        self._session = Session(settings, self._retrier, logger)
        api = SdkSettings(settings)
        self._transport = SdkTransport(api, self._session)
        self._auth = auth_session.AuthSession(api, self._transport, serialize.deserialize40, "4.0")
        self.sdk = methods40.Looker40SDK(
            self._auth, serialize.deserialize40, serialize.serialize40, self._transport, "4.0"
        )
        self._session.on_unauthorized = self._relogin
        self._login_lock = threading.Lock()
        self.query_slots = threading.BoundedSemaphore(settings.max_concurrent_queries)
        self._api_root = settings.base_url.rstrip("/") + API_PATH
        self._warn_about_transport_security()

    def _warn_about_transport_security(self) -> None:
        """One WARNING each when the secret could be read or intercepted on the way to Looker."""
        url = urlsplit(self.settings.base_url)
        if not self.settings.verify_ssl:
            self.logger.warning(
                "verify_ssl is false: Looker's TLS certificate is not checked, so whoever can "
                "intercept the connection can pose as Looker and receive the client secret"
            )
            # That one warning replaces urllib3's, which it would print for every request.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if url.scheme == "http" and not _is_loopback(url.hostname):
            self.logger.warning(
                "base_url %s is http://, not https://: the client secret, the API token and "
                "every result travel in clear text",
                self.settings.base_url,
            )

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
                return dict(
                    _deserialized(f"POST {API_PATH}/login", lambda: self._auth.authenticate({}))
                )
            except SDKError as exc:
                message = _sdk_message(exc)
                if message.startswith("HTTP 404 ") or "not found" in message.lower():
                    message = (
                        "Looker refused the API credentials (404 from /login): check "
                        "client_id and client_secret, and that base_url is the instance URL "
                        "without /api/..."
                    )
                else:
                    message = f"the login to Looker failed: {message}"
                raise LoginError(message) from exc
            except LoginError:
                raise
            except LookerError as exc:  # a redirect, TLS, or an answer that is not a login's
                msg = f"the login to Looker failed: {exc}"
                raise LoginError(msg) from exc

    def check_connection(self) -> str:
        """Log in and return who we are (`GET /user`)."""
        self.auth_headers()
        try:
            user = _deserialized(
                f"GET {API_PATH}/user", lambda: self.sdk.me(fields="id,display_name,email")
            )
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
        what = f"GET {API_PATH}/lookml_models/{model}/explores/{explore}"
        try:
            result = _deserialized(
                what, lambda: self.sdk.lookml_model_explore(model, explore, fields=_EXPLORE_FIELDS)
            )
        except SDKError as exc:
            message = _sdk_message(exc)
            if message.lower().startswith("not found"):
                raise NotFoundError(message, 404) from exc
            raise LookerError(message) from exc
        return _deserialized(what, lambda: _fields_of(result))

    def model_explores(self, model: str) -> list[str] | None:
        """Explore names of a model, or None when the model does not exist."""
        self.auth_headers()
        try:
            result = _deserialized(
                f"GET {API_PATH}/lookml_models/{model}",
                lambda: self.sdk.lookml_model(model, fields="name,explores(name)"),
            )
        except SDKError as exc:
            if _sdk_message(exc).lower().startswith("not found"):
                return None
            raise LookerError(_sdk_message(exc)) from exc
        return [explore.name for explore in result.explores or [] if explore.name]

    def model_names(self) -> list[str]:
        """Every model the API user can see, internal ones (System Activity) included."""
        self.auth_headers()
        try:
            models = _deserialized(
                f"GET {API_PATH}/lookml_models",
                lambda: self.sdk.all_lookml_models(fields="name", include_internal=True),
            )
        except SDKError as exc:
            raise LookerError(_sdk_message(exc)) from exc
        return [model.name for model in models if model.name]

    # Saved content

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> t.Any:  # noqa: ANN401
        """`GET` an API path and return its JSON.

        Raises:
            NotFoundError: Looker answered 404.
            MalformedAnswerError: the body is not JSON.
            LookerError: any other error.
        """
        response = self.api("GET", path, params=params)
        try:
            return response.json()
        except ValueError as exc:
            msg = f"Looker's answer to GET {API_PATH}{path} is not JSON: {snippet_of(response)}"
            raise MalformedAnswerError(msg) from exc

    def _object(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, t.Any]:
        """`GET` an API path whose answer must be a JSON object.

        Raises:
            MalformedAnswerError: it is not one.
        """
        value = self.get_json(path, params)
        if not isinstance(value, dict):
            msg = f"Looker's answer to GET {API_PATH}{path} is {json_kind(value)}, not an object"
            raise MalformedAnswerError(msg)
        return value

    def look(self, look_id: str) -> dict[str, t.Any]:
        """A Look with its query (`GET /looks/{id}`)."""
        return self._object(f"/looks/{quote(look_id)}", {"fields": "id,title,query"})

    def saved_query(self, query_id: str) -> dict[str, t.Any]:
        """A saved query by id (`GET /queries/{id}`)."""
        return self._object(f"/queries/{quote(query_id)}")

    def query_for_slug(self, slug: str) -> dict[str, t.Any]:
        """A saved query by slug (`GET /queries/slug/{slug}`)."""
        return self._object(f"/queries/slug/{quote(slug)}")

    def dashboard(self, dashboard_id: str) -> tuple[dict[str, t.Any], list[dict[str, t.Any]]]:
        """A dashboard (with its filters) and its elements (tiles).

        Raises:
            MalformedAnswerError: the elements are not a list of objects.
        """
        path = f"/dashboards/{quote(dashboard_id, safe=':')}"
        dashboard = self._object(path, {"fields": "id,title,dashboard_filters"})
        elements = self.get_json(f"{path}/dashboard_elements")
        where = f"GET {API_PATH}{path}/dashboard_elements"
        if not isinstance(elements, list):
            msg = f"Looker's answer to {where} is {json_kind(elements)}, not a list of tiles"
            raise MalformedAnswerError(msg)
        for number, element in enumerate(elements, 1):
            if not isinstance(element, dict):
                msg = (
                    f"Looker's answer to {where}: element {number} is {json_kind(element)}, "
                    "not a tile object"
                )
                raise MalformedAnswerError(msg)
        return dashboard, elements

    def merge_query(self, merge_query_id: str) -> dict[str, t.Any]:
        """A merge query, the definition of a merged-results tile (`GET /merge_queries/{id}`)."""
        return self._object(f"/merge_queries/{quote(merge_query_id)}")

    # Query runs

    def run_url(self, result_format: str) -> str:
        """The inline-run endpoint for a result format."""
        return f"{self._api_root}/queries/run/{quote(result_format)}"

    def _run_json(self, body: QueryBody, result_format: str) -> t.Any:  # noqa: ANN401 - JSON
        """The decoded body of a small inline run in a JSON format, within a query slot."""
        with self.query_slots:
            response = self.post_run(self.run_url(result_format), body, stream=False)
            try:
                return response.json()
            except ValueError as exc:
                msg = f"{result_format} run answered a non-JSON body: {response.text[:200]}"
                raise LookerError(msg) from exc

    def json_bi_fields(self, body: QueryBody) -> dict[str, LookerField]:
        """Field metadata from a `json_bi` run (the fallback when explore metadata is 404)."""
        payload = self._run_json(body, "json_bi")
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

    def result_fields(self, body: QueryBody) -> dict[str, LookerField]:
        """Field metadata of a `json_detail` run, custom fields and table calculations included.

        Raises:
            LookerError: Looker refused the query or reported an error.
        """
        payload = self._run_json(body, "json_detail")
        if not isinstance(payload, dict):
            msg = f"json_detail run answered {json_kind(payload)}, not a result object"
            raise LookerError(msg)
        errors = payload.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) and errors else errors
            detail = (
                first.get("message_details") or first.get("message")
                if isinstance(first, dict)
                else first
            )
            msg = f"Looker reported an error: {detail}"
            raise LookerError(msg)
        groups = payload.get("fields") or {}
        fields: dict[str, LookerField] = {}
        for category, key in (
            ("dimension", "dimensions"),
            ("dimension", "pivots"),
            ("measure", "measures"),
            ("table_calculation", "table_calculations"),
        ):
            for item in groups.get(key) or []:
                if isinstance(item, dict) and item.get("name"):
                    field_ = LookerField.from_api(item, category=category)
                    fields[field_.name] = field_
        return fields

    def check(self, response: requests.Response) -> requests.Response:
        """The response when its status is not an error, else the error that status means."""
        if response.status_code >= 400:  # noqa: PLR2004
            message = describe_response(response)
            response.close()
            raise status_error(message, response.status_code)
        return response

    def post_run(
        self, url: str, body: QueryBody, *, stream: bool, retry_read_timeouts: bool = True
    ) -> requests.Response:
        """`POST` a query to a run endpoint (fresh results, unformatted values)."""
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        response = self._session.send(
            "POST",
            url,
            headers=headers,
            params={
                "apply_formatting": "false",
                "cache": "false",
                "limit": str(body.limit),
                **({"server_table_calcs": "true"} if body.server_table_calcs else {}),
            },
            data=body.serialize(),
            stream=stream,
            retry_read_timeouts=retry_read_timeouts,
        )
        return self.check(response)

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, t.Any] | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Call an API 4.0 path with a JSON body; the response, or the error its status means."""
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        data = json.dumps(json_body).encode("utf-8") if json_body is not None else None
        response = self._session.send(
            method, self._api_root + path, headers=headers, params=params, data=data, stream=stream
        )
        return self.check(response)


def _fields_of(result: t.Any) -> dict[str, LookerField]:  # noqa: ANN401 - the SDK's LookmlModelExplore
    """The fields of an explore's metadata, by name (a field in two groups counts once)."""
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
            # `category` is the SDK's enum: its value is Looker's word ("dimension").
            named = getattr(item.category, "value", item.category)
            field_ = LookerField.from_api(data, category=str(named or category))
            fields.setdefault(field_.name, field_)
    return fields
