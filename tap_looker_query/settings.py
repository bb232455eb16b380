"""The tap's settings: one JSON schema with every default and range, and `Settings` read from it.

Each default is written once, in `CONFIG_SCHEMA`; `Settings.from_config` reads a value or that
default, so no reader needs a fallback of its own. Ranges are in the schema too, so `--about`,
`meltano.yml` and the Hub definition show them, and the SDK rejects a value out of range before
any data moves; what JSON Schema cannot express (a time zone, a date) is checked here.
"""

from __future__ import annotations

import datetime as dt
import os
import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_looker_query.engine.plan import parse_instant
from tap_looker_query.looker.transport import ClientSettings, instance_url
from tap_looker_query.schema import timezone
from tap_looker_query.specs.model import KEYS_SUMMARY, SPEC_SCHEMA

if t.TYPE_CHECKING:
    from collections.abc import Mapping

#: Settings that fall back to the environment variables the Looker SDK itself reads.
SDK_ENV_FALLBACKS = {
    "base_url": "LOOKERSDK_BASE_URL",
    "client_id": "LOOKERSDK_CLIENT_ID",
    "client_secret": "LOOKERSDK_CLIENT_SECRET",
}
#: Looker's limit on queries in flight at once per API user.
MAX_CONCURRENT_QUERIES = 15
QueryMode = t.Literal["auto", "sync", "async"]

CONFIG_SCHEMA = th.PropertiesList(
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
        th.IntegerType(minimum=1, maximum=3600),
        default=120,
        title="HTTP Timeout",
        description="Seconds to wait for each HTTP response to start (1 to 3600).",
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
        th.ArrayType(SPEC_SCHEMA),
        title="Queries",
        description=f"Query specs, one stream each (looker_ingestion's format). {KEYS_SUMMARY}",
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
        th.IntegerType(minimum=1, maximum=8784),
        default=24,
        title="Window Hours",
        description="Length of the time window each incremental query reads, in hours "
        "(1 to 8784, a leap year).",
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType(minimum=0, maximum=527040),
        default=0,
        title="Lookback Minutes",
        description="Each incremental run re-reads this many minutes before the bookmark, to "
        "catch rows that changed or arrived late (0 or more; metadata.lookback_minutes "
        "overrides it per spec, and the System Activity presets set their own).",
    ),
    th.Property(
        "max_concurrent_queries",
        th.IntegerType(minimum=1, maximum=MAX_CONCURRENT_QUERIES),
        default=4,
        title="Max Concurrent Queries",
        description="Queries in flight at once across all streams, 1 to 15 (Looker allows 15 "
        "per user).",
    ),
    th.Property(
        "query_mode",
        th.StringType(allowed_values=list(t.get_args(QueryMode))),
        default="auto",
        title="Query Mode",
        description="How queries run: 'auto' runs them inline and switches a query to a "
        "Looker query task when Looker takes longer than 'timeout' to answer; 'async' "
        "always uses query tasks; 'sync' never does.",
    ),
    th.Property(
        "query_timeout",
        th.IntegerType(minimum=1),
        default=600,
        title="Query Timeout",
        description="Seconds a query task may run before it is killed and its window is "
        "split in two and retried.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=100),
        default=5,
        title="Max Retries",
        description="Retries of a request or window after a transient failure "
        "(429, 5xx, dropped connection, cut-off body); 0 to 100.",
    ),
    th.Property(
        "max_retry_wait",
        th.IntegerType(minimum=0, maximum=3600),
        default=60,
        title="Max Retry Wait",
        description="Longest single wait between retries, in seconds (0 to 3600).",
    ),
).to_dict()

#: Each setting's default, as the schema gives it.
DEFAULTS: dict[str, t.Any] = {
    name: prop["default"] for name, prop in CONFIG_SCHEMA["properties"].items() if "default" in prop
}


@dataclass(frozen=True)
class Settings:
    """The settings of one run, each read once (credentials may come from the environment)."""

    base_url: str | None
    client_id: str | None
    client_secret: str | None = field(repr=False)
    verify_ssl: bool
    timeout: int
    start_date: dt.datetime | None
    query_timezone: str
    tz: dt.tzinfo
    exclude_own_queries: bool
    window_hours: int
    lookback_minutes: int
    max_concurrent_queries: int
    query_mode: QueryMode
    query_timeout: int
    max_retries: int
    max_retry_wait: int

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> Settings:
        """The settings in `config`, defaults for the rest.

        Raises:
            ConfigValidationError: a value the schema cannot check is wrong (all listed).
        """
        value = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
        problems: list[str] = []
        start_date = None
        if value.get("start_date") not in (None, ""):
            try:
                start_date = parse_instant(str(value["start_date"]))
            except ValueError:
                problems.append(
                    f"setting 'start_date': {value['start_date']!r} is not a date-time; use "
                    "ISO 8601 like '2026-09-01T00:00:00Z'"
                )
        problems += _env_booleans(config)
        zone_name = str(value["query_timezone"])
        try:
            tz = timezone(zone_name)
        except (KeyError, ValueError):
            problems.append(
                f"setting 'query_timezone': unknown time zone {zone_name!r}; use an IANA name "
                "like 'America/New_York' or 'UTC'"
            )
            tz = dt.UTC
        if problems:
            msg = "Invalid settings"
            raise ConfigValidationError(msg, errors=problems)
        return cls(
            base_url=_credential(config, "base_url"),
            client_id=_credential(config, "client_id"),
            client_secret=_credential(config, "client_secret"),
            verify_ssl=bool(value["verify_ssl"]),
            timeout=int(value["timeout"]),
            start_date=start_date,
            query_timezone=zone_name,
            tz=tz,
            exclude_own_queries=bool(value["exclude_own_queries"]),
            window_hours=int(value["window_hours"]),
            lookback_minutes=int(value["lookback_minutes"]),
            max_concurrent_queries=int(value["max_concurrent_queries"]),
            query_mode=value["query_mode"],
            query_timeout=int(value["query_timeout"]),
            max_retries=int(value["max_retries"]),
            max_retry_wait=int(value["max_retry_wait"]),
        )

    def client_settings(self) -> ClientSettings:
        """What the Looker client needs.

        Raises:
            ConfigValidationError: a credential is missing from the config and the environment,
                or base_url is not an http(s) URL or holds a password.
        """
        missing = [key for key in SDK_ENV_FALLBACKS if not getattr(self, key)]
        if missing:
            errors = [
                f"setting '{key}' is required: set it in the config or as {SDK_ENV_FALLBACKS[key]}"
                for key in missing
            ]
            msg = "Missing Looker credentials"
            raise ConfigValidationError(msg, errors=errors)
        try:
            base_url = instance_url(str(self.base_url))
        except ValueError as exc:
            msg = "Invalid base_url"
            raise ConfigValidationError(msg, errors=[str(exc)]) from exc
        return ClientSettings(
            base_url=base_url,
            client_id=str(self.client_id),
            client_secret=str(self.client_secret),
            verify_ssl=self.verify_ssl,
            timeout=self.timeout,
            max_retries=self.max_retries,
            max_retry_wait=float(self.max_retry_wait),
            max_concurrent_queries=self.max_concurrent_queries,
            query_mode=self.query_mode,
            query_timeout=float(self.query_timeout),
        )


#: What a boolean setting may say in the environment (the SDK reads anything else as false).
_BOOLEAN_TEXT = frozenset({"true", "false", "1", "0", "yes", "no", "t", "f", "y", "n", "on", "off"})


def _env_booleans(config: Mapping[str, t.Any]) -> list[str]:
    """A boolean setting read as false from environment text that is neither true nor false."""
    problems = []
    for name, prop in CONFIG_SCHEMA["properties"].items():
        if "boolean" not in prop.get("type", []) or config.get(name) is not False:
            continue
        variable = f"TAP_LOOKER_QUERY_{name.upper()}"
        text = os.environ.get(variable)
        if text is not None and text.strip().lower() not in _BOOLEAN_TEXT:
            problems.append(
                f"environment variable {variable}={text!r} is neither true nor false; use "
                "true or false"
            )
    return problems


def _credential(config: Mapping[str, t.Any], key: str) -> str | None:
    """A credential from the config, else from the Looker SDK's environment variable."""
    value = config.get(key)
    if value in (None, ""):
        value = os.environ.get(SDK_ENV_FALLBACKS[key]) or None
    return None if value is None else str(value)
