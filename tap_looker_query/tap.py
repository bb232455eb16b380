"""`TapLookerQuery`: the Singer SDK adapter; one stream per query spec.

config -> `settings` -> `specs` (parsed, then saved content resolved by `specs.sources`) ->
`discovery` (schemas from Looker's field metadata, or the input catalog) -> one `QueryStream`
per spec, each reading through the `engine`. The run's resources live on a `Run`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import typing as t
from contextlib import contextmanager

import requests
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue

from tap_looker_query.discovery import Discovery
from tap_looker_query.errors import LoginError, LookerError, SpecError, TerminatedError
from tap_looker_query.run import Run
from tap_looker_query.settings import CONFIG_SCHEMA, Settings
from tap_looker_query.specs.merge import refusal_of
from tap_looker_query.specs.parse import parse_specs
from tap_looker_query.specs.sources import resolve
from tap_looker_query.stream import QueryStream
from tap_looker_query.system_activity import exclude_own_queries
from tap_looker_query.writer import BufferedMsgSpecWriter

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

    import click
    from singer_sdk.streams import Stream

    from tap_looker_query.specs.model import QuerySpec


@contextmanager
def _clean_exit(ctx: click.Context, logger: logging.Logger) -> Iterator[None]:
    """Report configuration problems one per line and exit 1, without a traceback."""
    try:
        yield
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error(error)  # noqa: TRY400 - the messages are the report
        ctx.exit(1)


@contextmanager
def _as_config_error(base_url: str | None) -> Iterator[None]:
    """Spec, login and metadata problems, as the SDK's configuration error."""
    try:
        yield
    except SpecError as exc:
        msg = "Invalid query specs"
        raise ConfigValidationError(msg, errors=exc.problems) from exc
    except LoginError as exc:
        raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
    except (LookerError, requests.RequestException) as exc:
        message = f"cannot read metadata from Looker at {base_url}: {exc}"
        raise ConfigValidationError(message, errors=[message]) from exc


def _input_problem(content: object, what: str) -> str | None:
    """What is wrong with the shape of a state or catalog document, if anything."""
    if not isinstance(content, dict):
        return f"the {what} must be a JSON object, got {type(content).__name__}"
    if what == "state":
        bookmarks = content.get("bookmarks", {})
        if not isinstance(bookmarks, dict) or not all(
            isinstance(value, dict) for value in bookmarks.values()
        ):
            return "the state's 'bookmarks' must map each stream name to an object"
    elif not isinstance(content.get("streams"), list):
        return "the catalog must have a 'streams' list"
    return None


def _read_input(file: t.IO[str] | None, what: str) -> dict[str, t.Any] | None:
    """A state or catalog file, or exit 1 with one line naming what is wrong with it."""
    if file is None:
        return None
    try:
        content = json.loads(file.read())
    except (ValueError, RecursionError) as exc:
        problem: str | None = f"the {what} file is not JSON ({exc})"
    else:
        problem = _input_problem(content, what)
    if problem is not None:
        TapLookerQuery.logger.error("%s: %s", getattr(file, "name", what), problem)
        sys.exit(1)
    return t.cast("dict[str, t.Any]", content)


class TapLookerQuery(Tap):
    """Singer tap for Looker queries: one typed, incremental stream per query spec."""

    name = "tap-looker-query"
    dynamic_catalog = True
    message_writer_class = BufferedMsgSpecWriter
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        *Tap.capabilities,
        TapCapabilities.TEST,
    ]
    config_jsonschema = CONFIG_SCHEMA

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._run: Run | None = None
        self._specs: list[QuerySpec] | None = None
        super().__init__(*args, **kwargs)

    @property
    def run(self) -> Run:
        """This invocation's resources, clock and failures."""
        if self._run is None:
            self._run = Run(Settings.from_config(self.config), self.logger)
        return self._run

    @property
    def specs(self) -> list[QuerySpec]:
        """The validated query specs, Looks, dashboards and saved queries resolved.

        Raises:
            ConfigValidationError: with one message per problem. Problems that need no Looker
                call are reported before any request is sent.
        """
        if self._specs is None:
            run = self.run
            with _as_config_error(run.settings.base_url):
                parsed = parse_specs(self.config)
                specs = resolve(run.client, parsed, self.logger.warning, self.logger.info)
            if run.settings.exclude_own_queries:
                specs = [exclude_own_queries(spec) for spec in specs]
            self._specs = specs
        return self._specs

    def _discover_schemas(self, specs: list[QuerySpec]) -> dict[str, dict[str, t.Any]]:
        run = self.run
        with _as_config_error(run.client.settings.base_url):
            return Discovery(run.client, run.settings.query_timezone, self.logger).schemas(specs)

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
        streams = [
            QueryStream(self, run=self.run, spec=spec, schema=known[spec.name]) for spec in specs
        ]
        # The SDK syncs streams ordered by name (`Tap.load_streams`); each lets the next start.
        by_name = sorted(streams, key=lambda stream: stream.name)
        self.run.sync_order([(stream.name, stream.warm_up) for stream in by_name])
        return list(streams)

    def check_batch_config(self) -> None:
        """BATCH mode's problems, all of them, before any query runs (`invoke`).

        Raises:
            ConfigValidationError: one message per problem.
        """
        if not self.config.get("batch_config"):
            return
        problems: list[str] = []
        for stream in self.streams.values():
            if not stream.selected:
                continue
            batch_config = stream.get_batch_config(self.config)
            if batch_config is None:
                continue
            problem = t.cast("QueryStream", stream).batch_problem(batch_config)
            if problem is not None:
                problems.append(problem)
        if problems:
            # A problem of batch_config itself is the same for every stream: said once.
            errors = list(dict.fromkeys(problems))
            msg = "batch_config cannot be used"
            raise ConfigValidationError(msg, errors=errors)

    def stopped(self, signum: int) -> t.NoReturn:
        """After SIGTERM or SIGINT: the STATE of what was emitted, then exit 128 + signum.

        Download threads still waiting on Looker are not waited for.
        """
        self.state_writer.write_state(self.state)
        self.logger.error(
            "Stopped by %s; the last STATE covers every record emitted",
            signal.Signals(signum).name,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    def close(self) -> None:
        """Log out and stop the download threads."""
        if self._run is not None:
            self._run.close()

    # Commands

    def check_specs(self) -> None:
        """`--test`: log in and check every spec against Looker, without extracting data."""
        client = self.run.client
        with _as_config_error(client.settings.base_url):
            who = client.check_connection()
        self.logger.info("Connected to %s as %s", client.settings.base_url, who)
        schemas = self._discover_schemas(self.specs)
        refused = {spec.name: refusal_of(spec) for spec in self.specs if refusal_of(spec)}
        for name, schema in schemas.items():
            if name not in refused:
                self.logger.info("%s: OK (%d fields)", name, len(schema["properties"]))
        self.close()
        if refused:
            msg = "Streams that cannot be extracted"
            raise ConfigValidationError(msg, errors=[str(text) for text in refused.values()])

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """`--config`: a file that is missing or not JSON is one line, not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except (OSError, ValueError) as exc:  # simplejson's JSONDecodeError is a ValueError
            cls.logger.error("--config %s: %s", " ".join(value), exc)  # noqa: TRY400 - the report
            ctx.exit(1)

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
        try:
            tap = cls(
                config=getattr(config, "config", None),
                state=_read_input(state, "state"),
                catalog=_read_input(catalog, "catalog"),
                parse_env_config=bool(getattr(config, "parse_env", False)),
                validate_config=True,
            )
        except ValueError as exc:  # the SDK parsing a setting from the environment
            cls.logger.error("Invalid settings: %s", exc)  # noqa: TRY400 - the report
            sys.exit(1)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, _frame: tap.run.stop(number))
        try:
            tap.check_batch_config()
            tap.sync_all()
        except TerminatedError as stopped:
            tap.stopped(stopped.signum)
        finally:
            tap.close()
        failures = tap.run.failures
        if failures:
            cls.logger.error("%d stream(s) failed:", len(failures))
            for stream, reason in failures.items():
                cls.logger.error("  %s: %s", stream, reason)
            sys.exit(1)
