"""`TapLookerQuery`: settings, and one stream per query spec.

Streams are built from the input catalog first; Looker is asked only for what is missing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
import typing as t
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue

from tap_looker_query.client import (
    ClientSettings,
    LoginError,
    LookerClient,
    LookerError,
    NotFoundError,
    QueryBody,
)
from tap_looker_query.presets import CLIENT_ID_PREFIX
from tap_looker_query.schema import (
    Kind,
    LookerField,
    kind_of,
    property_name,
    property_schema,
    timezone,
)
from tap_looker_query.specs import (
    QuerySpec,
    SavedSpec,
    SpecError,
    check_against_explore,
    dashboard_specs,
    parse_specs,
    saved_query_spec,
    suggestion,
)
from tap_looker_query.streams import QueryStream
from tap_looker_query.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import click
    from singer_sdk.streams import Stream


if t.TYPE_CHECKING:
    from typing_extensions import override
else:
    try:
        from typing import override
    except ImportError:  # Python < 3.12
        from typing_extensions import override

#: Settings that fall back to the environment variables the Looker SDK itself reads.
SDK_ENV_FALLBACKS = {
    "base_url": "LOOKERSDK_BASE_URL",
    "client_id": "LOOKERSDK_CLIENT_ID",
    "client_secret": "LOOKERSDK_CLIENT_SECRET",
}
MAX_CONCURRENT_QUERIES = 15  # Looker's per-user limit on concurrent queries

_QUERY_SPEC = th.ObjectType(
    th.Property("name", th.StringType, description="Stream (and table) name, ^[a-z][a-z0-9_]*$."),
    th.Property("model", th.StringType, description="LookML model, e.g. system__activity."),
    th.Property("explore", th.StringType, description="Explore in the model, e.g. history."),
    th.Property(
        "fields", th.ArrayType(th.StringType), description="Fields to select, as view.field."
    ),
    th.Property(
        "filters",
        th.ObjectType(additional_properties=th.StringType),
        description="Field name to Looker filter expression; ANDed.",
    ),
    th.Property("sorts", th.ArrayType(th.StringType), description="Sorts, e.g. 'view.field desc'."),
    th.Property(
        "limit",
        th.CustomType({"type": ["integer", "string"]}),
        description="Row limit per query (int or numeric string, -1 for unlimited).",
    ),
    th.Property("filter_expression", th.StringType, description="Looker custom filter."),
    th.Property(
        "metadata",
        th.ObjectType(
            th.Property("datetime", th.StringType, description="Replication field (time)."),
            th.Property(
                "default_days",
                th.CustomType({"type": ["integer", "string"]}),
                description="Days to read on the first run when start_date is not set.",
            ),
            th.Property(
                "result_format",
                th.StringType,
                description="Result format to request: json (default) or csv.",
            ),
            th.Property("primary_keys", th.ArrayType(th.StringType), description="Key fields."),
            th.Property(
                "window_hours",
                th.CustomType({"type": ["integer", "string"]}),
                description="Window length for this spec, overriding the window_hours setting.",
            ),
            additional_properties=True,
        ),
        description="looker_ingestion metadata: datetime, default_days, result_format, ...",
    ),
    additional_properties=True,
)


@contextmanager
def _clean_exit(ctx: click.Context, logger: t.Any) -> Iterator[None]:  # noqa: ANN401
    """Report configuration problems one per line and exit 1, without a traceback."""
    try:
        yield
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error(error)  # noqa: TRY400 - the messages are the report
        ctx.exit(1)


class TapLookerQuery(Tap):
    """Singer tap for Looker queries: one typed, incremental stream per query spec."""

    name = "tap-looker-query"
    dynamic_catalog = True
    message_writer_class = BufferedMsgSpecWriter
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        *Tap.capabilities,
        TapCapabilities.TEST,
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            title="Looker URL",
            description="Instance URL without /api/..., e.g. https://company.looker.com. "
            "Defaults to LOOKERSDK_BASE_URL.",
        ),
        th.Property(
            "client_id",
            th.StringType,
            title="Client ID",
            description="API3 client id. Defaults to LOOKERSDK_CLIENT_ID.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            title="Client Secret",
            description="API3 client secret. Defaults to LOOKERSDK_CLIENT_SECRET. Never logged.",
        ),
        th.Property(
            "verify_ssl",
            th.BooleanType,
            default=True,
            title="Verify SSL",
            description="Verify the instance's TLS certificate.",
        ),
        th.Property(
            "timeout",
            th.IntegerType,
            default=120,
            title="HTTP Timeout",
            description="Seconds to wait for each HTTP response to start.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start Date",
            description="First-run lower bound for incremental specs (no offset means UTC). "
            "Without it a spec reads metadata.default_days back from now.",
        ),
        th.Property(
            "query_timezone",
            th.StringType,
            default="UTC",
            title="Query Time Zone",
            description="IANA time zone sent with every query; windows and values use it.",
        ),
        th.Property(
            "queries",
            th.ArrayType(_QUERY_SPEC),
            title="Queries",
            description="Query specs, one stream each (looker_ingestion's format).",
        ),
        th.Property(
            "queries_file",
            th.StringType,
            title="Queries File",
            description="Path of a JSON file with one query spec or a list of them, in "
            "looker_ingestion's format; relative to the working directory.",
        ),
        th.Property(
            "exclude_own_queries",
            th.BooleanType,
            default=False,
            title="Exclude Own Queries",
            description="Leave the tap's own queries out of System Activity History specs. "
            "The tap gives each query it runs a client id starting with 'tapLookerQuery', "
            "which History shows as query.client_id.",
        ),
        th.Property(
            "window_hours",
            th.IntegerType,
            default=24,
            title="Window Hours",
            description="Length of the time window each incremental query reads.",
        ),
        th.Property(
            "max_concurrent_queries",
            th.IntegerType,
            default=4,
            title="Max Concurrent Queries",
            description="Queries in flight at once across all streams (Looker allows 15 per user).",
        ),
        th.Property(
            "query_mode",
            th.StringType(allowed_values=["auto", "sync", "async"]),
            default="auto",
            title="Query Mode",
            description="How queries run: 'auto' runs them inline and switches a query to a "
            "Looker query task when Looker takes longer than 'timeout' to answer; 'async' "
            "always uses query tasks; 'sync' never does.",
        ),
        th.Property(
            "query_timeout",
            th.IntegerType,
            default=600,
            title="Query Timeout",
            description="Seconds a query task may run before it is killed and its window is "
            "split in two and retried.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            title="Max Retries",
            description="Retries of a request or window after a transient failure "
            "(429, 5xx, dropped connection, cut-off body).",
        ),
        th.Property(
            "max_retry_wait",
            th.IntegerType,
            default=60,
            title="Max Retry Wait",
            description="Longest single wait between retries, in seconds.",
        ),
    ).to_dict()

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Remember when the run started: incremental windows stop there."""
        self.run_started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._client: LookerClient | None = None
        self._fetch_pool: ThreadPoolExecutor | None = None
        self._specs: list[QuerySpec] | None = None
        self.failures: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    # Config and shared resources

    def setting(self, key: str) -> t.Any:  # noqa: ANN401
        """A setting, falling back to the Looker SDK's environment variables for credentials."""
        value = self.config.get(key)
        if value in (None, "") and key in SDK_ENV_FALLBACKS:
            value = os.environ.get(SDK_ENV_FALLBACKS[key]) or None
        return value

    def _client_settings(self) -> ClientSettings:
        missing = [key for key in SDK_ENV_FALLBACKS if not self.setting(key)]
        if missing:
            errors = [
                f"setting '{key}' is required: set it in the config or as {SDK_ENV_FALLBACKS[key]}"
                for key in missing
            ]
            msg = "Missing Looker credentials"
            raise ConfigValidationError(msg, errors=errors)
        concurrent = int(self.config.get("max_concurrent_queries") or 4)
        if not 1 <= concurrent <= MAX_CONCURRENT_QUERIES:
            msg = "max_concurrent_queries out of range"
            raise ConfigValidationError(
                msg,
                errors=[
                    (
                        f"setting 'max_concurrent_queries' must be 1 to {MAX_CONCURRENT_QUERIES} "
                        f"(Looker's per-user limit), got {concurrent}"
                    )
                ],
            )
        base_url = str(self.setting("base_url")).rstrip("/")
        if base_url.endswith(("/api/4.0", "/api")):
            base_url = base_url.rsplit("/api", 1)[0]
        return ClientSettings(
            base_url=base_url,
            client_id=str(self.setting("client_id")),
            client_secret=str(self.setting("client_secret")),
            verify_ssl=bool(self.config.get("verify_ssl", True)),
            timeout=int(self.config.get("timeout") or 120),
            max_retries=int(self.config.get("max_retries", 5)),
            max_retry_wait=float(self.config.get("max_retry_wait") or 60),
            max_concurrent_queries=concurrent,
            query_mode=str(self.config.get("query_mode") or "auto"),
            query_timeout=float(self.config.get("query_timeout") or 600),
        )

    @property
    def client(self) -> LookerClient:
        """The Looker client, created on first use."""
        if self._client is None:
            self._client = LookerClient(self._client_settings(), self.logger)
        return self._client

    @property
    def fetch_pool(self) -> ThreadPoolExecutor:
        """Threads that download query results ahead of the record emitter."""
        if self._fetch_pool is None:
            workers = int(self.config.get("max_concurrent_queries") or 4)
            self._fetch_pool = ThreadPoolExecutor(workers, thread_name_prefix="looker-fetch")
        return self._fetch_pool

    def close(self) -> None:
        """Log out and stop the download threads."""
        if self._fetch_pool is not None:
            self._fetch_pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            stats = self._client.stats
            if stats.retries or stats.relogins:
                self.logger.info(
                    "Looker API: %d request(s) retried, %d new login(s) after a 401",
                    stats.retries,
                    stats.relogins,
                )
            self._client.logout()

    def warm_up_after(self, stream: QueryStream) -> None:
        """Let the stream synced after `stream` start its first queries now."""
        names = list(self.streams)
        position = names.index(stream.name)
        for name in names[position + 1 :]:
            following = self.streams[name]
            if isinstance(following, QueryStream) and following.selected:
                try:
                    following.warm_up()
                except (ValueError, LookerError) as exc:  # it will report this itself when it runs
                    self.logger.debug("%s: no warm-up: %s", name, exc)
                return

    def record_failure(self, stream: str, reason: str) -> None:
        """A stream stopped on an error; the run goes on and exits non-zero at the end."""
        self.failures[stream] = reason
        self.logger.error("%s: stream stopped: %s", stream, reason)

    @property
    def specs(self) -> list[QuerySpec]:
        """The validated query specs, Looks, dashboards and saved queries resolved.

        Raises:
            ConfigValidationError: with one message per problem. Problems that need no Looker
                call are reported before any request is sent.
        """
        if self._specs is None:
            problems: list[str] = []
            parsed: list[QuerySpec | SavedSpec] = []
            try:
                parsed = parse_specs(self.config)
            except SpecError as exc:
                problems = exc.problems
            try:
                timezone(str(self.config.get("query_timezone") or "UTC"))
            except (KeyError, ValueError):
                problems.append(
                    f"setting 'query_timezone': unknown time zone "
                    f"{self.config.get('query_timezone')!r}; use an IANA name like "
                    "'America/New_York' or 'UTC'"
                )
            if problems:
                msg = "Invalid query specs"
                raise ConfigValidationError(msg, errors=problems)
            specs = self._resolve(parsed)
            self._specs = [self._exclude_own_queries(spec) for spec in specs]
        return self._specs

    def _resolve(self, parsed: list[QuerySpec | SavedSpec]) -> list[QuerySpec]:  # noqa: C901, PLR0912
        """Fetch the queries of Looks, dashboards and saved queries into specs."""
        problems: list[str] = []
        specs: list[QuerySpec] = []
        for item in parsed:
            if isinstance(item, QuerySpec):
                specs.append(item)
                continue
            try:
                if item.kind == "dashboard_id":
                    dashboard, elements = self.client.dashboard(item.ref)
                    tiles, found, notes = dashboard_specs(item, dashboard, elements)
                    for note in notes:
                        self.logger.warning("%s: %s", item.name, note)
                    specs += tiles
                    problems += found
                    continue
                if item.kind == "look_id":
                    query = self.client.look(item.ref).get("query") or {}
                elif item.kind == "query_id":
                    query = self.client.saved_query(item.ref)
                else:
                    query = self.client.query_for_slug(item.ref)
            except NotFoundError:
                problems.append(
                    f"{item.label}: {item.describe} does not exist, or the API user cannot see it"
                )
                continue
            except LoginError as exc:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
            except (LookerError, requests.RequestException) as exc:
                problems.append(f"{item.label}: cannot read {item.describe}: {exc}")
                continue
            spec, found = saved_query_spec(item, query, item.describe)
            problems += found
            if spec is not None:
                specs.append(spec)
        names: dict[str, str] = {}
        for spec in specs:
            if spec.name in names:
                problems.append(
                    f"{spec.label}: duplicate stream name (also {names[spec.name]}); names must "
                    "be unique"
                )
            names.setdefault(spec.name, spec.label)
        if problems:
            msg = "Invalid query specs"
            raise ConfigValidationError(msg, errors=problems)
        return specs

    def _exclude_own_queries(self, spec: QuerySpec) -> QuerySpec:
        """With `exclude_own_queries`, History specs leave out the tap's own queries."""
        if not self.config.get("exclude_own_queries"):
            return spec
        if (spec.model, spec.explore) != ("system__activity", "history"):
            return spec
        if "query.client_id" in spec.filters:
            return spec
        own = f"-{CLIENT_ID_PREFIX}%"
        return dataclasses.replace(spec, filters={**spec.filters, "query.client_id": own})

    @staticmethod
    def field_properties(spec: QuerySpec) -> list[tuple[str, str]]:
        """(Looker field, Singer property) for each field of a spec, in order."""
        return [(name, property_name(name)) for name in spec.fields]

    # Discovery

    def _explore_fields(
        self, spec: QuerySpec, cache: dict[str, dict[str, LookerField] | None]
    ) -> tuple[dict[str, LookerField], list[str]]:
        """Fields of a spec's explore (one call per explore), or the problems finding it."""
        key = spec.explore_id
        if key not in cache:
            try:
                cache[key] = self.client.explore_fields(spec.model, spec.explore)
            except NotFoundError:
                cache[key] = None
        fields = cache[key]
        if fields is not None:
            return fields, []
        explores = self.client.model_explores(spec.model)
        if explores is None:
            models = self.client.model_names()
            if spec.model not in models:
                return {}, [
                    (
                        f"{spec.label}: key 'model': unknown model '{spec.model}'"
                        f"{suggestion(spec.model, models)}"
                    )
                ]
            # An internal model Looker lists but will not describe: let the query decide.
        elif spec.explore not in explores:
            return {}, [
                (
                    f"{spec.label}: key 'explore': model '{spec.model}' has no explore "
                    f"'{spec.explore}'{suggestion(spec.explore, explores)}"
                )
            ]
        # Looker lists the explore but will not describe it (System Activity explores built
        # on internal tables answer 404): type the fields from a one-row json_bi run instead.
        self.logger.warning(
            "%s: Looker has no field metadata for explore %s (404); typing fields from a "
            "one-row json_bi query",
            spec.name,
            key,
        )
        body = QueryBody(
            model=spec.model,
            view=spec.explore,
            fields=spec.fields,
            filters=spec.filters,
            sorts=(),
            limit=1,
            query_timezone=str(self.config.get("query_timezone") or "UTC"),
            filter_expression=spec.filter_expression,
        )
        try:
            fields = self.client.json_bi_fields(body)
        except LookerError as exc:
            return {}, [f"{spec.label}: Looker rejected the query on explore {key}: {exc}"]
        # Looker ran the query with the spec's filters, so the filtered fields exist too.
        for name in spec.filters:
            fields.setdefault(name, LookerField(name=name, type="", category="filter"))
        return fields, []

    def _schema_for(self, spec: QuerySpec, fields: dict[str, LookerField]) -> dict[str, t.Any]:
        properties: dict[str, t.Any] = {}
        for name, prop in self.field_properties(spec):
            field = fields[name]
            kind = kind_of(field)
            if kind is None:
                self.logger.warning(
                    "%s: field '%s' has Looker type '%s', which the tap does not know; "
                    "it is typed as a string",
                    spec.name,
                    name,
                    field.type,
                )
                kind = Kind.STRING
            properties[prop] = property_schema(field, kind)
        return {"type": "object", "properties": properties}

    def _discover_schemas(self, specs: list[QuerySpec]) -> dict[str, dict[str, t.Any]]:
        """Schemas for specs from Looker's field metadata, after checking every spec.

        Raises:
            ConfigValidationError: any spec does not match Looker (all problems listed).
        """
        cache: dict[str, dict[str, LookerField] | None] = {}
        problems: list[str] = []
        schemas: dict[str, dict[str, t.Any]] = {}
        try:
            for spec in specs:
                fields, found = self._explore_fields(spec, cache)
                found = found or check_against_explore(spec, fields)
                if found:
                    problems.extend(found)
                    continue
                schemas[spec.name] = self._schema_for(spec, fields)
        except LoginError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
        except (LookerError, requests.RequestException) as exc:
            base = self.client.settings.base_url
            message = f"cannot read metadata from Looker at {base}: {exc}"
            raise ConfigValidationError(message, errors=[message]) from exc
        if problems:
            msg = "Query specs do not match Looker"
            raise ConfigValidationError(msg, errors=problems)
        return schemas

    @override
    def discover_streams(self) -> list[Stream]:
        """One stream per spec; schemas from the input catalog when given, else from Looker."""
        specs = self.specs
        known: dict[str, dict[str, t.Any]] = {}
        catalog = self.input_catalog
        if catalog is not None:
            for spec in specs:
                entry = catalog.get(spec.name)
                if entry is not None and entry.schema is not None:
                    known[spec.name] = entry.schema.to_dict()
        missing = [spec for spec in specs if spec.name not in known]
        if missing:
            known.update(self._discover_schemas(missing))
        return [QueryStream(self, spec=spec, schema=known[spec.name]) for spec in specs]

    # Commands

    def check_specs(self) -> None:
        """`--test`: log in and check every spec against Looker, without extracting data."""
        who = self.client.check_connection()
        self.logger.info("Connected to %s as %s", self.client.settings.base_url, who)
        schemas = self._discover_schemas(self.specs)
        for name, schema in schemas.items():
            self.logger.info("%s: OK (%d fields)", name, len(schema["properties"]))
        self.close()

    @classmethod
    @override
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        with _clean_exit(ctx, cls.logger):
            super().cb_discover(ctx, param, value)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test` checks the connection and the specs; `--test=schema` prints schemas."""
        if value == CliTestOptionValue.Disabled.value:
            return
        with _clean_exit(ctx, cls.logger):
            config = ctx.params.get("config")
            tap = cls(
                config=getattr(config, "config", None),
                parse_env_config=bool(getattr(config, "parse_env", False)),
                validate_config=True,
            )
            if value == CliTestOptionValue.Schema.value:
                tap.write_schemas()
            else:
                tap.check_specs()
        ctx.exit()

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Sync all streams, then exit non-zero listing each stream that failed.

        Same steps as `Tap.invoke`, plus logging out at the end and the failure report: a
        failing stream stops, the others still run.
        """
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        cls.print_version(print_fn=cls.logger.info)
        tap = cls(
            config=getattr(config, "config", None),
            state=None if state is None else json.loads(state.read()),
            catalog=None if catalog is None else json.loads(catalog.read()),
            parse_env_config=bool(getattr(config, "parse_env", False)),
            validate_config=True,
        )
        try:
            tap.sync_all()
        finally:
            tap.close()
        if tap.failures:
            cls.logger.error("%d stream(s) failed:", len(tap.failures))
            for stream, reason in tap.failures.items():
                cls.logger.error("  %s: %s", stream, reason)
            sys.exit(1)
