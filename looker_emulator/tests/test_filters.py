"""Query semantics: filter grammar, limits, sorts, time zones, measures, inserted rows."""

# Filter values are naive datetimes in the query time zone, as Looker reads them.

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looker_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, LookerEmulator
from looker_emulator.datasets.synthetic import SyntheticSource
from looker_emulator.filters import FilterError, datetime_terms, number_sql, string_sql

PINNED_NOW = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)


def ids(rows: list[dict]) -> set:
    return {next(iter(r.values())) for r in rows}


@pytest.fixture(scope="module")
def history(looker_emulator_session: LookerEmulator) -> list[dict]:
    return looker_emulator_session.query_rows(
        "system__activity",
        "history",
        ["history.id", "history.created_time", "history.completed_time"],
        sorts=["history.id"],
    )


def window(emu: LookerEmulator, expr: str, field: str = "history.created_time") -> set:
    return ids(emu.query_rows("system__activity", "history", ["history.id"], filters={field: expr}))


# ---------------------------------------------------------------- datetime


def test_to_is_half_open_after_inclusive_before_exclusive(looker_emulator_session, history) -> None:
    emu = looker_emulator_session
    stamp = history[5000]["history.created_time"]
    at = {r["history.id"] for r in history if r["history.created_time"] == stamp}
    nxt = (datetime.fromisoformat(stamp) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert window(emu, f"{stamp} to {nxt}") == at
    assert window(emu, f"{stamp} to {stamp}") == set()
    after = window(emu, f"after {stamp}")
    before = window(emu, f"before {stamp}")
    assert at <= after
    assert not (at & before)
    assert len(after) + len(before) == len(history)


def test_bursts_and_gaps_exist(history) -> None:
    per_second = Counter(r["history.created_time"] for r in history)
    assert max(per_second.values()) >= 200
    days = sorted({r["history.created_time"][:10] for r in history})
    gaps = [(datetime.fromisoformat(b) - datetime.fromisoformat(a)).days for a, b in pairwise(days)]
    assert max(gaps) >= 4
    assert 20_000 <= len(history) <= 40_000


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=st.integers(0, 120 * 86400), span=st.integers(0, 5 * 86400))
def test_random_windows_match_python(
    looker_emulator_session, history, start: int, span: int
) -> None:
    base = datetime(2026, 7, 3)
    a = (base + timedelta(seconds=start)).strftime("%Y-%m-%d %H:%M:%S")
    b = (base + timedelta(seconds=start + span)).strftime("%Y-%m-%d %H:%M:%S")
    expected = {r["history.id"] for r in history if a <= r["history.created_time"] < b}
    assert window(looker_emulator_session, f"{a} to {b}") == expected


def test_relative_periods(looker_emulator, history) -> None:
    looker_emulator.now = PINNED_NOW

    def between(a: str, b: str) -> set:
        return {r["history.id"] for r in history if a <= r["history.created_time"] < b}

    assert window(looker_emulator, "7 days") == between("2026-10-26", "2026-11-02")
    assert window(looker_emulator, "1 day ago") == between("2026-10-31", "2026-11-01")
    assert window(looker_emulator, "3 days ago for 2 days") == between("2026-10-29", "2026-10-31")
    assert window(looker_emulator, "last week") == between("2026-10-19", "2026-10-26")
    assert window(looker_emulator, "2026-10-30") == between("2026-10-30", "2026-10-31")
    assert window(looker_emulator, "2026/10") == between("2026-10", "2026-11")
    assert window(looker_emulator, "2026-10-30 for 2 days") == between("2026-10-30", "2026-11-01")


def test_datetime_terms_grammar() -> None:
    now = datetime(2026, 11, 4, 15, 0)  # a Wednesday
    assert datetime_terms("today", now) == [(datetime(2026, 11, 4), datetime(2026, 11, 5))]
    assert datetime_terms("this week", now) == [(datetime(2026, 11, 2), datetime(2026, 11, 9))]
    assert datetime_terms("2 hours", now) == [
        (datetime(2026, 11, 4, 14), datetime(2026, 11, 4, 16))
    ]
    assert datetime_terms("last 3 days", now) == [(datetime(2026, 11, 2), datetime(2026, 11, 5))]
    assert datetime_terms("1 month ago", now) == [(datetime(2026, 10, 1), datetime(2026, 11, 1))]
    assert datetime_terms("NULL, NOT NULL", now) == ["NULL", "NOT NULL"]
    with pytest.raises(FilterError):
        datetime_terms("2026-13-01", now)


def test_null_and_not_null(looker_emulator_session, history) -> None:
    nulls = {r["history.id"] for r in history if r["history.completed_time"] is None}
    assert nulls
    assert window(looker_emulator_session, "NULL", "history.completed_time") == nulls
    assert len(window(looker_emulator_session, "NOT NULL", "history.completed_time")) == len(
        history
    ) - len(nulls)


def test_filter_expression_on_time(looker_emulator_session, history) -> None:
    stamp = history[7000]["history.created_time"]
    y, mo, d = stamp[:10].split("-")
    h, mi, s = stamp[11:].split(":")
    lower = f"date_time({int(y)},{int(mo)},{int(d)},{int(h)},{int(mi)},{int(s)})"
    expr = (
        f"${{history.created_time}} > {lower} "
        "AND ${history.created_time} < date_time(2026,10,30,0,0,0)"
    )
    got = ids(
        looker_emulator_session.query_rows(
            "system__activity", "history", ["history.id"], filter_expression=expr
        )
    )
    assert got == {
        r["history.id"]
        for r in history
        if stamp < r["history.created_time"] < "2026-10-30 00:00:00"
    }
    expr_ge = expr.replace("} >", "} >=", 1)
    got_ge = ids(
        looker_emulator_session.query_rows(
            "system__activity", "history", ["history.id"], filter_expression=expr_ge
        )
    )
    assert got_ge - got == {r["history.id"] for r in history if r["history.created_time"] == stamp}


# ---------------------------------------------------------------- strings, yesno, numbers


def test_string_filters(looker_emulator_session) -> None:
    emu = looker_emulator_session
    models = emu.query_rows("system__activity", "query", ["query.id", "query.model"])

    def q(expr: str) -> set:
        return ids(
            emu.query_rows("system__activity", "query", ["query.id"], filters={"query.model": expr})
        )

    def py(pred) -> set:
        return {r["query.id"] for r in models if pred(r["query.model"])}

    assert q("thelook") == py(lambda m: m == "thelook")
    assert q("thelook, ecommerce") == py(lambda m: m in ("thelook", "ecommerce"))
    assert q("system^_^_activity") == py(lambda m: m == "system__activity")
    assert q("-system^_^_activity") == py(lambda m: m != "system__activity")
    assert q("-system^_^_activity, -i^_^_looker") == py(
        lambda m: m not in ("system__activity", "i__looker")
    )
    assert q("%look%") == py(lambda m: "look" in m)
    assert q("i__look%") == py(lambda m: m.startswith("i") and m[3:].startswith("look"))
    assert q("_helook") == py(lambda m: m == "thelook")
    assert q("-%look%") == py(lambda m: "look" not in m)
    emails = emu.query_rows("system__activity", "user", ["user.id", "user.email"])
    empty = ids(
        emu.query_rows("system__activity", "user", ["user.id"], filters={"user.email": "EMPTY"})
    )
    assert empty == {r["user.id"] for r in emails if not r["user.email"]}
    assert empty
    not_empty = ids(
        emu.query_rows("system__activity", "user", ["user.id"], filters={"user.email": "-EMPTY"})
    )
    assert not_empty == {r["user.id"] for r in emails if r["user.email"]}


def test_string_sql_escapes() -> None:
    sql, params = string_sql("50^%, a^,b, ^-x", "c")
    assert params == ["50%", "a,b", "-x"]
    assert "LIKE" not in sql
    sql, params = string_sql("100^%%", "c")
    assert params == ["100^%%"]
    assert "LIKE" in sql


def test_yesno_filter(looker_emulator_session) -> None:
    rows = looker_emulator_session.query_rows(
        "system__activity", "user", ["user.id", "user.is_looker"]
    )
    yes = ids(
        looker_emulator_session.query_rows(
            "system__activity", "user", ["user.id"], filters={"user.is_looker": "yes"}
        )
    )
    assert yes == {r["user.id"] for r in rows if r["user.is_looker"] == "Yes"} == {2}


@pytest.mark.parametrize(
    ("expr", "pred"),
    [
        ("5", lambda v: v == 5),
        ("NOT 5", lambda v: v != 5),
        ("1, 3, 5", lambda v: v in (1, 3, 5)),
        ("5 to 10", lambda v: 5 <= v <= 10),
        (">=5 AND <=10", lambda v: 5 <= v <= 10),
        ("[5, 10)", lambda v: 5 <= v < 10),
        ("(5, 10]", lambda v: 5 < v <= 10),
        ("(30, inf)", lambda v: v > 30),
        ("<3 OR >38", lambda v: v < 3 or v > 38),
        ("to 4", lambda v: v <= 4),
    ],
)
def test_number_filters(looker_emulator_session, expr: str, pred) -> None:
    got = ids(
        looker_emulator_session.query_rows(
            "system__activity", "user", ["user.id"], filters={"user.id": expr}
        )
    )
    assert got == {i for i in range(1, 41) if pred(i)}


def test_number_null_and_bad_input() -> None:
    assert number_sql("NULL", "c") == ("((((c IS NULL))))", [])
    with pytest.raises(FilterError):
        number_sql("five", "c")


def test_bad_filter_value_is_400(looker_emulator_session) -> None:
    base = looker_emulator_session.base_url + "/api/4.0"
    tok = requests.post(
        f"{base}/login",
        data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    ).json()["access_token"]
    r = requests.post(
        f"{base}/queries/run/json",
        headers={"Authorization": f"token {tok}"},
        json={
            "model": "system__activity",
            "view": "history",
            "fields": ["history.id"],
            "filters": {"history.created_time": "yesterdayish"},
        },
        timeout=10,
    )
    assert r.status_code == 400


# ---------------------------------------------------------------- limits, sorts, time zones


def _run(emu: LookerEmulator, body: dict, **params) -> requests.Response:
    base = emu.base_url + "/api/4.0"
    tok = requests.post(
        f"{base}/login",
        data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET},
        timeout=10,
    ).json()["access_token"]
    return requests.post(
        f"{base}/queries/run/json",
        headers={"Authorization": f"Bearer {tok}"},
        json=body,
        params=params,
        timeout=60,
    )


def test_limits(looker_emulator_session) -> None:
    body = {
        "model": "system__activity",
        "view": "history",
        "fields": ["history.id"],
        "sorts": ["history.id"],
    }
    assert len(_run(looker_emulator_session, body).json()) == 5000
    total = len(looker_emulator_session.query_rows("system__activity", "history", ["history.id"]))
    assert len(_run(looker_emulator_session, dict(body, limit="-1")).json()) == total
    assert len(_run(looker_emulator_session, dict(body, limit=7)).json()) == 7
    assert len(_run(looker_emulator_session, dict(body, limit="7")).json()) == 7
    assert len(_run(looker_emulator_session, dict(body, limit="7"), limit=3).json()) == 3
    assert len(_run(looker_emulator_session, dict(body, limit="7"), limit=-1).json()) == total


def test_sorts(looker_emulator_session) -> None:
    rows = looker_emulator_session.query_rows(
        "system__activity",
        "history",
        ["history.id", "history.created_time"],
        sorts=["history.created_time desc", "history.id desc"],
        limit="50",
    )
    keys = [(r["history.created_time"], r["history.id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    default = looker_emulator_session.query_rows(
        "system__activity", "history", ["history.id", "history.created_time"], sorts=None, limit="5"
    )
    assert [r["history.created_time"] for r in default] == sorted(
        (r["history.created_time"] for r in default), reverse=True
    )


def test_query_timezone_renders_and_filters(looker_emulator_session, history) -> None:
    emu = looker_emulator_session
    ny = emu.query_rows(
        "system__activity",
        "history",
        ["history.id", "history.created_time", "history.created_date"],
        filters={"history.created_time": "2026-10-05 00:00:00 to 2026-10-06 00:00:00"},
        query_timezone="America/New_York",
    )
    # EDT is UTC-4 on that day: the NY day is [04:00Z, 04:00Z next day).
    expected = {
        r["history.id"]: r["history.created_time"]
        for r in history
        if "2026-10-05 04:00:00" <= r["history.created_time"] < "2026-10-06 04:00:00"
    }
    assert {r["history.id"] for r in ny} == set(expected)
    for r in ny:
        utc = datetime.fromisoformat(expected[r["history.id"]])
        assert r["history.created_time"] == (utc - timedelta(hours=4)).strftime("%Y-%m-%d %H:%M:%S")
        assert r["history.created_date"] == "2026-10-05"


# ---------------------------------------------------------------- measures, data sets, inserts


def test_measures_group_and_aggregate(looker_emulator_session) -> None:
    emu = looker_emulator_session
    items = emu.query_rows(
        "thelook",
        "order_items",
        [
            "order_items.id",
            "order_items.status",
            "order_items.sale_price",
            "order_items.order_id",
            "order_items.shipping_cost",
        ],
    )
    agg = emu.query_rows(
        "thelook",
        "order_items",
        [
            "order_items.status",
            "order_items.count",
            "order_items.total_sale_price",
            "order_items.max_sale_price",
            "order_items.order_count",
            "order_items.total_shipping",
        ],
        sorts=["order_items.status"],
    )
    for row in agg:
        mine = [i for i in items if i["order_items.status"] == row["order_items.status"]]
        assert row["order_items.count"] == len(mine)
        assert row["order_items.total_sale_price"] == pytest.approx(
            sum(i["order_items.sale_price"] or 0 for i in mine)
        )
        assert row["order_items.max_sale_price"] == max(
            i["order_items.sale_price"] or 0 for i in mine
        )
        orders = {i["order_items.order_id"]: i["order_items.shipping_cost"] for i in mine}
        assert row["order_items.order_count"] == len(orders)
        assert row["order_items.total_shipping"] == pytest.approx(sum(orders.values()))
    pct = emu.query_rows(
        "thelook",
        "order_items",
        [
            "order_items.status",
            "order_items.percent_of_total_sale_price",
            "order_items.running_total_sale_price",
        ],
        sorts=["order_items.status"],
    )
    assert sum(r["order_items.percent_of_total_sale_price"] for r in pct) == pytest.approx(100)
    assert pct[-1]["order_items.running_total_sale_price"] == pytest.approx(
        sum(r["order_items.total_sale_price"] for r in agg)
    )


def test_thelook_every_dimension_renders(looker_emulator_session) -> None:
    emu = looker_emulator_session
    explore = emu.models["thelook"].explores["order_items"]
    dims = [f.name for f in explore.fields_by_name().values() if f.category == "dimension"]
    rows = emu.query_rows(
        "thelook",
        "order_items",
        dims,
        filters={"order_items.created_time": "2025-03-05 10:00:00 to 2025-03-06 00:00:00"},
        sorts=["order_items.id"],
        limit="5",
    )
    r = rows[0]
    assert len(r["order_items.created_time"]) == 19
    assert r["order_items.created_quarter"].startswith("2025-Q")
    assert isinstance(r["order_items.created_year"], int)
    assert r["order_items.created_day_of_week"] == "Wednesday"
    assert r["order_items.created_day_of_week_index"] == 2
    assert r["order_items.created_month_name"] == "March"
    assert r["order_items.is_returned"] in ("Yes", "No")
    assert r["users.zip"].isdigit()
    assert "," in r["users.location"]
    measures = [f.name for f in explore.fields_by_name().values() if f.category == "measure"]
    assert emu.query_rows("thelook", "order_items", ["products.category", *measures], limit="3")


def test_synthetic_index_range_and_order(looker_emulator) -> None:
    looker_emulator.synthetic_rows = 100_000
    rows = looker_emulator.query_rows(
        "synthetic",
        "synthetic",
        ["synthetic.id", "synthetic.created_time"],
        filters={"synthetic.created_time": "2026-01-01 01:00:00 to 2026-01-01 02:00:00"},
        sorts=["synthetic.created_time"],
    )
    first = SyntheticSource.first_index_at(int(datetime(2026, 1, 1, 1, tzinfo=UTC).timestamp()))
    last = SyntheticSource.first_index_at(int(datetime(2026, 1, 1, 2, tzinfo=UTC).timestamp()))
    assert [r["synthetic.id"] for r in rows] == list(range(first + 1, last + 1))
    assert all(
        "2026-01-01 01:00:00" <= r["synthetic.created_time"] < "2026-01-01 02:00:00" for r in rows
    )
    desc = looker_emulator.query_rows(
        "synthetic", "synthetic", ["synthetic.id"], sorts=["synthetic.id desc"], limit="3"
    )
    assert [r["synthetic.id"] for r in desc] == [100_000, 99_999, 99_998]
    assert (
        looker_emulator.query_rows("synthetic", "synthetic", ["synthetic.count"])[0][
            "synthetic.count"
        ]
        == 100_000
    )


def test_insert_rows_then_query(looker_emulator) -> None:
    emu = looker_emulator
    emu.insert_rows(
        "system__activity",
        "history",
        [
            {
                "history.id": 900001,
                "history.created_time": "2026-11-02 10:00:00",
                "history.status": "complete",
                "history.is_single_query": "Yes",
                "query.model": "brand_new_model",
                "user.id": 7,
            },
            {"history.id": 900002, "history.created_date": "2026-11-03", "history.runtime": 1.5},
        ],
    )
    rows = emu.query_rows(
        "system__activity",
        "history",
        [
            "history.id",
            "history.created_time",
            "query.model",
            "user.id",
            "history.is_single_query",
            "history.runtime",
        ],
        filters={"history.created_time": "after 2026-11-02"},
        sorts=["history.id"],
    )
    assert rows == [
        {
            "history.id": 900001,
            "history.created_time": "2026-11-02 10:00:00",
            "query.model": "brand_new_model",
            "user.id": 7,
            "history.is_single_query": "Yes",
            "history.runtime": None,
        },
        {
            "history.id": 900002,
            "history.created_time": "2026-11-03 00:00:00",
            "query.model": None,
            "user.id": None,
            "history.is_single_query": "No",
            "history.runtime": 1.5,
        },
    ]
    with pytest.raises(KeyError):
        emu.insert_rows("system__activity", "history", [{"history.nope": 1}])
