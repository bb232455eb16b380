"""Memory regression guard: results stream through the tap, they are never held whole.

Not timing tests. Three guards:

* the hot path never reads a whole query result (`Response.content`, `.text`, `.json()` on a
  result run) and asks for it with `stream=True`, read in several chunks;
* the tap's peak RSS (exact: `ru_maxrss` of the tap process) on one 400,000-row window stays
  under a bound that any buffering implementation exceeds (the body alone is ~270 MB), and
  barely grows from 50,000 to 400,000 rows;
* json batches decode into typed rows (the fast path), not into dicts (the fallback).

The benchmarks (`make bench`, benchmarks/RESULTS.md) measure the real figures at 2,000,000 rows.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import pytest
import requests

from benchmarks.harness import Emulator, run_timed
from looker_emulator.datasets.synthetic import WIDE_FIELDS
from tap_looker_query.engine.records import RecordBuilder
from tap_looker_query.looker import runs
from tests.helpers import run_tap

if TYPE_CHECKING:
    from pathlib import Path

    from looker_emulator import LookerEmulator

FIELDS = WIDE_FIELDS
PEAK_RSS_BOUND_MB = 150  # the bound at 2M rows; a buffered 400k-row body alone is ~270 MB
GROWTH_BOUND_MB = 25  # 50k -> 400k rows; buffering would add > 200 MB


def _config(
    base_url: str, result_format: str = "json", start_date: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    """One window from `start_date` over the synthetic rows (the run starts after all of them)."""
    return {
        "base_url": base_url,
        "client_id": "emulator-client-id",
        "client_secret": "emulator-client-secret",
        "start_date": start_date,
        "query_timezone": "UTC",
        "window_hours": 8760,
        "queries": [
            {
                "name": "synthetic",
                "model": "synthetic",
                "explore": "synthetic",
                "fields": FIELDS,
                "sorts": ["synthetic.created_time"],
                "limit": -1,
                "metadata": {
                    "datetime": "synthetic.created_time",
                    "primary_keys": ["synthetic.id"],
                    "result_format": result_format,
                },
            }
        ],
    }


def _is_result_run(url: str | None) -> bool:
    path = (url or "").split("?", 1)[0]
    return path.endswith(("/queries/run/json", "/queries/run/csv")) or "/results" in path


@pytest.mark.parametrize("result_format", ["json", "csv"])
def test_result_bodies_are_streamed_never_read_whole(
    looker_emulator: LookerEmulator, monkeypatch: pytest.MonkeyPatch, result_format: str
) -> None:
    looker_emulator.synthetic_rows = 20_000  # a ~13 MB json body: several 256 KiB chunks
    whole_reads: list[str] = []
    sends: list[bool] = []
    chunks: list[int] = []

    content = requests.Response.content
    assert isinstance(content, property)
    assert content.fget is not None
    original_content = content.fget
    original_json = requests.Response.json
    original_send = requests.Session.send
    original_iter = runs.iter_body

    def guarded_content(self: requests.Response) -> bytes:
        if _is_result_run(self.url) and self.status_code == 200:
            whole_reads.append(f"content {self.url}")
        return original_content(self)

    def guarded_json(self: requests.Response, **kwargs: Any) -> Any:
        if _is_result_run(self.url) and self.status_code == 200:
            whole_reads.append(f"json {self.url}")
        return original_json(self, **kwargs)

    def recording_send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        if _is_result_run(request.url):
            sends.append(bool(kwargs.get("stream")))
        return original_send(self, request, **kwargs)

    def counting_iter(response: requests.Response, *args: Any, **kwargs: Any) -> Any:
        for chunk in original_iter(response, *args, **kwargs):
            if _is_result_run(response.url):
                chunks.append(len(chunk))
            yield chunk

    # `.text` reads `.content`, so guarding `content` covers both.
    monkeypatch.setattr(requests.Response, "content", property(guarded_content))
    monkeypatch.setattr(requests.Response, "json", guarded_json)
    monkeypatch.setattr(requests.Session, "send", recording_send)
    monkeypatch.setattr(runs, "iter_body", counting_iter)

    run = run_tap(_config(looker_emulator.base_url, result_format))

    assert run.exit_code == 0, run.failures
    assert len(run.records("synthetic")) == 20_000
    assert whole_reads == []
    assert sends, "no result run went through requests.Session.send"
    assert all(sends), "a result run was requested without stream=True"
    assert len(chunks) > 1, "the result body arrived in one piece"
    assert max(chunks) <= 256 * 1024


def _peak_rss_mb(base_url: str, tmp_path: Path, label: str, start_date: str) -> tuple[float, str]:
    """Run the tap as a process (stdout to /dev/null); its exact peak RSS in MiB, and stderr.

    `run_timed` launches it behind benchmarks/peak.py, a small fresh process, so ru_maxrss is
    the tap's own peak and not the pytest process's (Linux carries the pre-exec peak of a
    vfork'ed child into ru_maxrss).
    """
    config = tmp_path / f"{label}.json"
    config.write_text(json.dumps(_config(base_url, start_date=start_date)))
    tap = [sys.executable, "-m", "tap_looker_query", "--config", str(config)]
    measured = run_timed(tap, stderr=tmp_path / f"{label}.stderr", timeout=300)
    stderr = (tmp_path / f"{label}.stderr").read_text(errors="replace")
    assert measured.returncode == 0, stderr[-3000:]
    return measured.peak_rss_mb, stderr


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss semantics of Linux")
def test_peak_memory_is_flat_in_result_size(tmp_path: Path) -> None:
    # The emulator in its own process, so only the tap's memory is measured.
    with Emulator(400_000) as emulator:
        # The same query over the last 50,000 rows: row i is at 2026-01-01 + floor(0.7 i) s,
        # so rows 350,000.. start at +245,000 s = 2026-01-03T20:03:20Z.
        small, small_log = _peak_rss_mb(
            emulator.base_url, tmp_path, "small", "2026-01-03T20:03:20Z"
        )
        large, large_log = _peak_rss_mb(
            emulator.base_url, tmp_path, "large", "2026-01-01T00:00:00Z"
        )
    assert "done: 400000 rows" in large_log
    assert "done: 50000 rows" in small_log
    assert large < PEAK_RSS_BOUND_MB, f"peak RSS {large:.0f} MB for 400,000 rows"
    assert large - small < GROWTH_BOUND_MB, (
        f"peak RSS grew {large - small:.1f} MB from 50,000 to 400,000 rows ({small:.0f} -> "
        f"{large:.0f} MB)"
    )


def test_json_batches_take_the_typed_path(
    looker_emulator: LookerEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is not lost silently: Looker's json values for the synthetic explore's
    twenty mixed fields decode into typed rows, never into dicts (the fallback)."""
    looker_emulator.synthetic_rows = 5_000
    kinds: list[str] = []
    original = RecordBuilder.records

    def counting(self: RecordBuilder, rows: list[Any]) -> list[dict[str, Any]]:
        kinds.append("typed" if rows and type(rows[0]) is self.row_type else "dict")
        return original(self, rows)

    monkeypatch.setattr(RecordBuilder, "records", counting)
    run = run_tap(_config(looker_emulator.base_url))
    assert run.exit_code == 0, run.failures
    assert len(run.records("synthetic")) == 5_000
    assert kinds, "no batch went through RecordBuilder.records"
    assert set(kinds) == {"typed"}, kinds
