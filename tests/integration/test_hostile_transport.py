"""Hostile servers (issue 12): redirects, trickled bodies, malformed answers, credentials in
URLs, TLS mistakes. Each test is named after the defect (D1-D16 of issue 12) it reproduces.

A proxy in front of the emulator (`tests.hostile_server`) produces what the emulator cannot;
a recorder on 127.0.0.2 stands in for "another host" and must receive nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import ssl
import time
import warnings
from typing import TYPE_CHECKING

import pytest

from tap_looker_query.engine.formats import iter_json_batches
from tap_looker_query.errors import ResultError, TruncatedResultError
from tap_looker_query.looker.client import LookerClient
from tap_looker_query.looker.transport import ClientSettings
from tests.helpers import FIELDS, config_for, history_spec, run_tap, run_tap_process
from tests.hostile_server import TOKEN, HostileServer, redirect, reply, trickle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from looker_emulator import LookerEmulator

RUN = "/api/4.0/queries/run/json"
LOGIN = "/api/4.0/login"
EXPLORE = "/api/4.0/lookml_models/system__activity/explores/history"
PASSWORD = "hunter2pw"
FAST = {"max_retry_wait": 0, "max_concurrent_queries": 1}
FULL_TABLE = history_spec(metadata={"primary_keys": ["history.id"]})


@pytest.fixture
def proxy(looker_emulator: LookerEmulator) -> Iterator[HostileServer]:
    """A pass-through proxy in front of the emulator; tests add the paths it misbehaves on."""
    with HostileServer(upstream=looker_emulator.base_url) as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[HostileServer]:
    """Another host: answers every request with a login token (or `[]`), and records it."""
    server = HostileServer(host="127.0.0.2", default=reply([]))
    server.on("POST", LOGIN, reply(TOKEN))
    with server:
        yield server


def through(proxy: HostileServer, emulator: LookerEmulator, *specs, **settings):
    """A config for the tap that talks to the emulator through the proxy."""
    config = config_for(emulator, *(specs or [history_spec()]), **{**FAST, **settings})
    config["base_url"] = proxy.base_url
    return config


def printed(run) -> str:
    return run.stdout + run.stderr


def assert_clean_failure(run, *words: str) -> None:
    """Exit non-zero with a message naming the problem, no traceback, no secret."""
    assert run.exit_code != 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr
    assert "emulator-client-secret" not in printed(run)


# D2, D3: redirects are never followed


def test_d2_redirect_on_a_run_fails_the_window_naming_the_location(
    looker_emulator, proxy, other_host
):
    evil = f"{other_host.base_url}/api/4.0/evil"
    proxy.on("POST", RUN, redirect(evil + "?token=abc"), count=1)
    run = run_tap(through(proxy, looker_emulator, start_date="2026-10-30T00:00:00Z"))
    [reason] = run.failures.values()
    assert "window [2026-10-30" in reason
    assert f"redirect to {evil};" in reason  # named, without its query string
    assert "token=abc" not in reason
    assert not run.records("query_history")  # not taken as an empty window
    bookmark = run.last_state["bookmarks"].get("query_history", {}).get("replication_key_value")
    assert bookmark is None or bookmark < "2026-10-30T00:00:01"
    assert other_host.seen == []


def test_d2_an_always_redirected_full_table_query_fails_instead_of_loading_nothing(
    looker_emulator, proxy, other_host
):
    proxy.on("POST", RUN, redirect(f"{other_host.base_url}/api/4.0/evil", status=301))
    run = run_tap(through(proxy, looker_emulator, FULL_TABLE))
    [reason] = run.failures.values()
    assert "HTTP 301, a redirect to http://127.0.0.2:" in reason
    assert other_host.seen == []


def test_d3_a_307_on_login_sends_the_credentials_nowhere_and_says_the_login_failed(
    looker_emulator, proxy, other_host
):
    proxy.on("POST", LOGIN, redirect(f"{other_host.base_url}{LOGIN}", status=307))
    run = run_tap_process(through(proxy, looker_emulator), "--discover", timeout=120)
    assert_clean_failure(run, "login to Looker failed", "HTTP 307, a redirect to")
    assert other_host.seen == []
    assert not proxy.requests_to("/api/4.0/lookml_models")  # nothing sent with a stray token


# D9: a password in base_url


@pytest.mark.parametrize(
    ("args", "in_env"),
    [(("--test",), False), (("--discover",), False), ((), False), (("--test",), True)],
    ids=["test", "discover", "sync", "test-LOOKERSDK_BASE_URL"],
)
def test_d9_a_password_in_base_url_is_refused_and_never_printed(looker_emulator, args, in_env):
    url = looker_emulator.base_url.replace("http://", f"http://user:{PASSWORD}@")
    config = config_for(looker_emulator, history_spec())
    env = {}
    if in_env:
        del config["base_url"]
        env["LOOKERSDK_BASE_URL"] = url
    else:
        config["base_url"] = url
    run = run_tap_process(config, *args, env=env, timeout=120)
    assert run.exit_code != 0
    assert PASSWORD not in printed(run)
    assert "setting 'base_url': holds a user name or password" in run.stderr
    assert not looker_emulator.requests  # refused before anything was sent


def test_d9_a_metadata_failure_does_not_print_the_base_url_password(looker_emulator, proxy):
    proxy.on("GET", "/api/4.0/", reply({"message": "Requires authentication."}, status=401))
    config = through(proxy, looker_emulator)
    config["base_url"] = proxy.base_url.replace("http://", f"http://user:{PASSWORD}@")
    run = run_tap_process(config, "--test", timeout=120)
    assert run.exit_code != 0
    assert PASSWORD not in printed(run)


# D7: a body that trickles


def test_d7_a_trickled_run_body_is_abandoned_after_query_timeout(looker_emulator, proxy):
    rows = [dict.fromkeys(FIELDS, 1) for _ in range(10)]
    proxy.on("POST", RUN, trickle(json.dumps(rows).encode(), every=0.25))
    began = time.monotonic()
    run = run_tap(through(proxy, looker_emulator, FULL_TABLE, query_timeout=1, max_retries=1))
    elapsed = time.monotonic() - began
    [reason] = run.failures.values()
    assert "took longer than query_timeout (1 s) to arrive" in reason
    assert elapsed < 30  # a trickle of 1,000+ bytes at 4 bytes/s would take minutes
    assert not run.records("query_history")


def test_d7_a_trickled_metadata_answer_is_abandoned_after_timeout(looker_emulator, proxy):
    proxy.on("GET", EXPLORE, trickle(b'{"name": "history", "fields": {}}' * 20, every=0.25))
    config = through(proxy, looker_emulator, timeout=1, max_retries=0)
    began = time.monotonic()
    run = run_tap_process(config, "--discover", timeout=120)
    assert time.monotonic() - began < 60
    assert_clean_failure(run, "took longer than timeout (1 s) to arrive")


# D12 and D14: malformed answers, and what a failed login says

LOOK = {"name": "saved", "look_id": 1}
DASHBOARD = {"name": "board", "dashboard_id": 1}
HTML = "<html><body><h1>Sign in</h1></body></html>"


@pytest.mark.parametrize(
    ("method", "path", "answer", "spec", "words"),
    [
        pytest.param(
            "POST", LOGIN, reply({"access_token": 5, "expires_in": "soon"}), None,
            ["login to Looker failed", "not what its API documents", "attribute expires_in"],
            id="d12-login-wrong-types",
        ),
        pytest.param(
            "POST", LOGIN, reply(HTML, content_type="text/html"), None,
            ["login to Looker failed", "not what its API documents"], id="d12-login-html",
        ),
        pytest.param(
            "GET", EXPLORE, reply(HTML, content_type="text/html"), None,
            [f"answer to GET {EXPLORE} is not what its API documents"], id="d12-explore-html",
        ),
        pytest.param(
            "GET", EXPLORE, reply({"name": "history", "fields": {"dimensions": "oops"}}),
            None, [f"answer to GET {EXPLORE} is not what its API documents", "@ index 0"],
            id="d12-explore-wrong-types",
        ),
        pytest.param(
            "GET", "/api/4.0/looks/1", reply({"id": "1", "query": "oops"}), LOOK,
            ["Look 1", "'query' is the string 'oops', not an object"], id="d12-look-query-oops",
        ),
        pytest.param(
            "GET", "/api/4.0/looks/1", reply([]), LOOK,
            ["Look 1", "is a JSON array, not an object"], id="d14-look-answers-a-list",
        ),
        pytest.param(
            "GET", "/api/4.0/looks/1", reply({"id": "1", "title": "t"}), LOOK,
            ["Look 1 has no query"], id="d14-look-without-query",
        ),
        pytest.param(
            "GET", "/api/4.0/dashboards/1/dashboard_elements", reply({"id": "1"}), DASHBOARD,
            ["dashboard_elements is a JSON object, not a list of tiles"],
            id="d12-dashboard-elements-object",
        ),
        pytest.param(
            "GET", "/api/4.0/dashboards/1/dashboard_elements", reply([1, "x", None]), DASHBOARD,
            ["element 1 is the value 1, not a tile object"], id="d12-dashboard-elements-scalars",
        ),
        pytest.param(
            "GET", "/api/4.0/dashboards/1/dashboard_elements",
            reply([{"id": "1", "title": "t", "result_maker": "x"}]), DASHBOARD,
            ["tile 't'", "'result_maker' is the string 'x', not an object"],
            id="d12-dashboard-tile-result-maker-string",
        ),
        pytest.param(
            "POST", LOGIN,
            reply({"message": "Not found",
                   "documentation_url": "https://docs.looker.com/r/err/4.0/404/post/login"},
                  status=404),
            None, ["Looker refused the API credentials (404 from /login)"],
            id="recorded-login-404-json",
        ),
        pytest.param(
            "POST", LOGIN,
            reply("<html><head><title>404 Not Found</title></head></html>", status=404,
                  content_type="*/*"),
            None, ["Looker refused the API credentials (404 from /login)"],
            id="recorded-login-404-html-any-type",
        ),
        pytest.param(
            "POST", LOGIN,
            reply({"message": "Error",
                   "documentation_url": "https://cloud.google.com/looker/docs/r/err/4.0/403/post/login"},
                  status=403),
            None, ["the login to Looker failed: HTTP 403 from POST /api/4.0/login: Error"],
            id="d14-login-403",
        ),
        pytest.param(
            "POST", LOGIN, reply({"message": "Internal error"}, status=500), None,
            ["the login to Looker failed: HTTP 500 from POST /api/4.0/login"], id="d14-login-500",
        ),
    ],
)  # fmt: skip
def test_d12_malformed_answers_give_one_clear_message(  # noqa: PLR0917 - parametrized
    looker_emulator, proxy, method, path, answer, spec, words
):
    proxy.on(method, path, answer)
    config = through(proxy, looker_emulator, spec or history_spec(), max_retries=0)
    run = run_tap_process(config, "--discover", timeout=120)
    assert_clean_failure(run, *words)
    assert "missing required key" not in run.stderr  # the spec is not to blame


# D14: URLs, TLS, JSON bodies


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:21", "127.0.0.1:{port}", "looker.example.com"])
def test_d14_a_base_url_that_is_not_http_gets_a_settings_message(looker_emulator, url):
    config = config_for(looker_emulator, history_spec())
    config["base_url"] = url.format(port=looker_emulator.port)
    run = run_tap_process(config, "--discover", timeout=120)
    assert_clean_failure(run, "setting 'base_url':", "is not an http:// or https:// URL")


def test_d14_https_to_a_plain_http_server_fails_once_with_a_tls_message(looker_emulator):
    config = config_for(looker_emulator, history_spec(), max_retry_wait=1)
    config["base_url"] = looker_emulator.base_url.replace("http://", "https://")
    began = time.monotonic()
    run = run_tap_process(config, "--discover", timeout=120)
    assert_clean_failure(run, "TLS failed with https://127.0.0.1:", "base_url's scheme")
    assert "Retrying" not in run.stderr
    assert time.monotonic() - began < 20


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'[{"a": 1}, {"a": NaN}]', "invalid character"),
        (b'[{"a": 1e999}]\n', "Number out of range"),
        (b'[{"a": "caf\xe9"}]', "Invalid UTF-8"),
    ],
    ids=["nan", "1e999", "latin-1"],
)
def test_d14_an_undecodable_complete_json_body_is_malformed_not_ended_early(body, why):
    with pytest.raises(ResultError, match="malformed") as caught:
        list(iter_json_batches(io.BytesIO(body)))
    assert why in str(caught.value)
    assert not isinstance(caught.value, TruncatedResultError)
    assert "ended early" not in str(caught.value)


def test_d14_a_json_body_cut_off_still_says_it_ended_early():
    with pytest.raises(TruncatedResultError, match="ended early"):
        list(iter_json_batches(io.BytesIO(b'[{"a": 1}, {"a": "x]')))


def _client(caplog, **settings) -> LookerClient:
    values = {
        "base_url": "https://looker.example.com",
        "client_id": "id",
        "client_secret": "secret",
        "verify_ssl": True,
        "timeout": 5,
        "max_retries": 0,
        "max_retry_wait": 0.0,
        "max_concurrent_queries": 1,
        "query_mode": "auto",
        "query_timeout": 5.0,
        **settings,
    }
    with caplog.at_level(logging.WARNING):
        return LookerClient(ClientSettings(**values), logging.getLogger("test-hostile"))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_d14_verify_ssl_false_logs_one_warning(caplog):
    _client(caplog, verify_ssl=False)
    [message] = _warnings(caplog)
    assert "verify_ssl is false" in message


def test_d14_http_to_a_remote_host_warns_that_the_secret_travels_in_clear_text(caplog):
    _client(caplog, base_url="http://looker.example.com")
    [message] = _warnings(caplog)
    assert "clear text" in message
    assert "secret" not in message.replace("client secret", "")


@pytest.mark.parametrize(
    "url", ["https://looker.example.com", "http://127.0.0.1:9999", "http://localhost:1"]
)
def test_d14_https_or_loopback_logs_no_warning(caplog, url):
    _client(caplog, base_url=url)
    assert _warnings(caplog) == []


# D15, D16


def test_d15_sync_mode_never_runs_query_tasks(looker_emulator):
    looker_emulator.faults.slow_query(4, count=2)  # both tries of the first inline run
    config = config_for(
        looker_emulator,
        history_spec(),
        start_date="2026-10-31T00:00:00Z",
        query_mode="sync",
        timeout=1,
        max_retries=1,
        max_retry_wait=0,
        max_concurrent_queries=1,
    )
    run = run_tap(config)
    paths = {r.path for r in looker_emulator.requests}
    assert "/api/4.0/query_tasks" not in paths
    assert "/api/4.0/queries" not in paths
    assert run.exit_code == 0, run.failures  # the window was read again, inline
    assert run.records("query_history")


def test_d16_schema_descriptions_name_the_category_not_the_enum(looker_emulator):
    config = config_for(looker_emulator, history_spec(), start_date="2026-11-01T00:00:00Z")
    run = run_tap(config)
    description = run.schema("query_history")["schema"]["properties"]["history_id"]["description"]
    assert "(dimension, type `number`)" in description
    assert "Category." not in description


# https with a self-signed certificate (what the review could not check)


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def test_d14_https_with_verify_ssl_false_works_with_one_warning(
    looker_emulator, self_signed, caplog
):
    with HostileServer(upstream=looker_emulator.base_url, tls=self_signed) as tls_proxy:
        config = through(tls_proxy, looker_emulator, start_date="2026-10-31T00:00:00Z")
        config["verify_ssl"] = False
        with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_tap(config)
    assert run.exit_code == 0, run.failures
    assert run.records("query_history")
    assert sum("verify_ssl is false" in m for m in _warnings(caplog)) == 1
    assert not [w for w in caught if "Unverified HTTPS request" in str(w.message)]


def test_d14_https_with_an_untrusted_certificate_fails_once_naming_it(looker_emulator, self_signed):
    with HostileServer(upstream=looker_emulator.base_url, tls=self_signed) as tls_proxy:
        config = through(tls_proxy, looker_emulator, max_retry_wait=1)
        run = run_tap_process(config, "--discover", timeout=120)
    assert_clean_failure(run, "TLS failed with https://127.0.0.1:", "CERTIFICATE_VERIFY_FAILED")
    assert "Retrying" not in run.stderr
