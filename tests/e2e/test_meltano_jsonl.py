"""``meltano run tap-looker-query target-jsonl``: state, several Looker instances, stream maps."""

from __future__ import annotations

import hashlib

import pytest

from looker_emulator import LookerEmulator
from tests.e2e.conftest import looker_env
from tests.e2e.expected import HISTORY_FIELDS, assert_records_match, read_jsonl, rows_since

START = "2026-10-29T00:00:00+00:00"  # the last ~3 days of the System Activity data set
NEW_ROWS = [  # arrive after the first run, all later than anything before
    {
        "history.id": 990001,
        "history.created_time": "2026-11-02 08:00:00",
        "history.runtime": 1.25,
        "history.status": "complete",
        "history.source": "api4",
        "history.is_single_query": "Yes",
        "history.query_id": 1,
        "history.user_id": 1,
    },
    {
        "history.id": 990002,
        "history.created_time": "2026-11-02 08:00:00",
        "history.runtime": None,
        "history.status": "error",
        "history.source": "explore",
        "history.is_single_query": "No",
        "history.query_id": 2,
        "history.user_id": None,
    },
    {
        "history.id": 990003,
        "history.created_time": "2026-11-03 17:45:30",
        "history.runtime": 0.001,
        "history.status": "complete",
        "history.source": "dashboard",
        "history.is_single_query": "No",
        "history.query_id": 3,
        "history.user_id": 13,
    },
]


def test_run_saves_state_and_second_run_loads_only_new_rows(meltano, looker_emulator):
    env = looker_env(looker_emulator, start_date=START, window_hours=168)
    meltano.run("run", "tap-looker-query", "target-jsonl", env=env).check()
    out = meltano.workdir / "output" / "query_history.jsonl"
    want = rows_since(
        looker_emulator,
        "system__activity",
        "history",
        HISTORY_FIELDS,
        "history.created_time",
        "2026-10-29 00:00:00",
    )
    assert len(want) > 300
    got = read_jsonl(out)
    assert_records_match(got, want, ("history_id",))
    assert any(r["user_email"] is None for r in got), "the window should include NULLs"

    state = meltano.state("dev:tap-looker-query-to-target-jsonl")
    bookmark = state["singer_state"]["bookmarks"]["query_history"]["replication_key_value"]
    assert bookmark == max(r["history_created_time"] for r in want)

    looker_emulator.insert_rows("system__activity", "history", NEW_ROWS)
    out.unlink()
    meltano.run("run", "tap-looker-query", "target-jsonl", env=env).check()
    second = read_jsonl(out)
    # The bookmark is inclusive (rows sharing its second may still have been arriving), so the
    # rows at exactly the bookmark's second are sent again, for the loader to upsert by key; every
    # other record is one of the new rows.
    since = bookmark.replace("T", " ").removesuffix("+00:00")
    want_new = rows_since(
        looker_emulator,
        "system__activity",
        "history",
        HISTORY_FIELDS,
        "history.created_time",
        since,
    )
    at_bookmark = [r for r in want_new if r["history_created_time"] == bookmark]
    assert sorted(r["history_id"] for r in want_new if r not in at_bookmark) == [
        990001,
        990002,
        990003,
    ]
    assert len(at_bookmark) < 10
    assert_records_match(second, want_new, ("history_id",))
    assert {r["history_id"]: r for r in second}[990002]["user_email"] is None
    state = meltano.state("dev:tap-looker-query-to-target-jsonl")
    assert (
        state["singer_state"]["bookmarks"]["query_history"]["replication_key_value"]
        == "2026-11-03T17:45:30+00:00"
    )

    # --full-refresh ignores the saved state: everything since start_date again.
    out.unlink()
    meltano.run("run", "--full-refresh", "tap-looker-query", "target-jsonl", env=env).check()
    assert len(read_jsonl(out)) == len(want) + len(NEW_ROWS)


@pytest.mark.usefixtures("_looker_master_db")
def test_two_looker_instances_with_their_own_credentials_specs_and_state(meltano):
    emea = LookerEmulator(client_id="emea-client", client_secret="emea-secret").start()
    amer = LookerEmulator(client_id="amer-client", client_secret="amer-secret").start()
    try:
        env = {
            **looker_env(emea, prefix="TAP_LOOKER_QUERY__EMEA", start_date=START, window_hours=168),
            **looker_env(
                amer,
                prefix="TAP_LOOKER_QUERY__AMER",
                start_date="2025-04-01T00:00:00Z",
                window_hours=24 * 120,
            ),
        }
        meltano.run(
            "run",
            "tap-looker-query--emea",
            "target-jsonl",
            "tap-looker-query--amer",
            "target-jsonl",
            env=env,
        ).check()
        emea_want = rows_since(
            emea,
            "system__activity",
            "history",
            [
                "history.id",
                "history.created_time",
                "history.runtime",
                "history.status",
                "history.is_single_query",
                "user.id",
            ],
            "history.created_time",
            "2026-10-29 00:00:00",
        )
        amer_want = rows_since(
            amer,
            "thelook",
            "order_items",
            [
                "order_items.id",
                "order_items.created_time",
                "order_items.status",
                "order_items.sale_price",
                "users.id",
            ],
            "order_items.created_time",
            "2025-04-01 00:00:00",
        )
        assert_records_match(
            read_jsonl(meltano.workdir / "output" / "emea_query_history.jsonl"),
            emea_want,
            ("history_id",),
        )
        assert_records_match(
            read_jsonl(meltano.workdir / "output" / "amer_order_items.jsonl"),
            amer_want,
            ("order_items_id",),
        )
        assert not (meltano.workdir / "output" / "query_history.jsonl").exists()
        emea_state = meltano.state("dev:tap-looker-query--emea-to-target-jsonl")["singer_state"][
            "bookmarks"
        ]
        amer_state = meltano.state("dev:tap-looker-query--amer-to-target-jsonl")["singer_state"][
            "bookmarks"
        ]
        assert set(emea_state) == {"emea_query_history"}
        assert set(amer_state) == {"amer_order_items"}
        for emu, other in ((emea, amer), (amer, emea)):
            logins = [r for r in emu.requests if r.path.endswith("/login")]
            assert logins, f"{emu.client_id}'s instance was never called"
            assert all(other.client_id not in str(r) for r in logins)
    finally:
        emea.stop()
        amer.stop()


def test_stream_maps_hash_pii_and_rename(meltano, looker_emulator):
    maps = {
        "query_history": {
            "user_email": "md5(user_email) if user_email else None",
            "run_status": "history_status",
            "history_status": "__NULL__",
        }
    }
    env = looker_env(looker_emulator, start_date=START, window_hours=168, stream_maps=maps)
    meltano.run("run", "tap-looker-query", "target-jsonl", env=env).check()
    got = read_jsonl(meltano.workdir / "output" / "query_history.jsonl")
    want = rows_since(
        looker_emulator,
        "system__activity",
        "history",
        HISTORY_FIELDS,
        "history.created_time",
        "2026-10-29 00:00:00",
    )
    for r in want:
        r["run_status"] = r.pop("history_status")
        r["user_email"] = (
            hashlib.md5(r["user_email"].encode()).hexdigest() if r["user_email"] else None
        )
    assert all("history_status" not in r for r in got)
    assert any(r["user_email"] is not None for r in got)
    assert_records_match(got, want, ("history_id",))
