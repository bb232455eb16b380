"""Model ``system__activity``: Looker's own usage data (History, Query, User, Event, ...).

Field names and types follow Looker's System Activity explores. Data are deterministic (seeded) and
span the 120 days before :data:`END` (2026-11-01 00:00:00 UTC), with bursts of hundreds of rows
sharing one second, gaps of several days, NULLs, unicode, commas, quotes and newlines.
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from looker_emulator.lookml import Explore, Join, Model, View

if TYPE_CHECKING:
    import sqlite3

END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - timedelta(days=120)
SEED = 20261101
TF = [
    "raw",
    "time",
    "date",
    "week",
    "month",
    "quarter",
    "year",
    "hour",
    "minute",
    "hour_of_day",
    "day_of_week",
]
TF_SHORT = ["raw", "time", "date", "week", "month", "year"]

SOURCES = [
    ("api4", 30),
    ("explore", 20),
    ("dashboard", 25),
    ("look", 6),
    ("scheduled_task", 8),
    ("sql_runner", 3),
    ("suggest", 5),
    ("private_embed", 2),
    ("alert", 1),
]
MODELS = ["thelook", "system__activity", "ecommerce", "b2b_sales", "i__looker", "marketing"]
VIEWS = ["order_items", "history", "users", "orders", "sessions", "events", "inventory_items"]
NAMES = [
    ("Ada", "Lovelace"),
    ("Zoë", "Ångström"),
    ("李", "小龙"),
    ("José", "Núñez 🚀"),
    ("Pat", "O'Brien, Jr."),
    ('Sam "the man"', "Lee"),
    ("Émile", "Zola"),
    ("Søren", "Kierkegaard"),
    ("Анна", "Каренина"),
    ("محمد", "علي"),
    ("Grace", "Hopper"),
    ("Alan", "Turing"),
    ("Björk", "Guðmundsdóttir"),
    ("山田", "太郎"),
    ("Chloé", "D'Arcy"),
    ("Nikola", "Tesla ⚡"),
]
TITLES = [
    "Revenue overview",
    "Ventes, par région",
    'The "Big" dashboard',
    "売上ダッシュボード",
    "Weekly KPIs 📈",
    "Multi-line\ntitle",
    "Ops / SLA",
    "Churn; cohorts & retention",
]
EVENTS = [
    ("login", "user"),
    ("logout", "user"),
    ("create_dashboard", "dashboard"),
    ("update_dashboard", "dashboard"),
    ("run_query", "query"),
    ("create_look", "look"),
    ("update_user", "user"),
    ("download_query", "query"),
    ("api_call", "api"),
]
ERRORS = [
    'Syntax error: Unexpected identifier "foo" at [3:12]',
    'Query timed out after 1200s\nPlease add a filter, or contact support, "ops" team.',
    "Access denied: Table 'db.secret' — 権限がありません",
]


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _client_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22))


def build_tables(conn: sqlite3.Connection) -> None:
    """Create and fill the System Activity tables."""
    rng = random.Random(SEED)
    conn.executescript(
        """
        CREATE TABLE sa_user (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, name TEXT,
            email TEXT, is_looker INTEGER, is_disabled INTEGER, created_at TEXT);
        CREATE TABLE sa_query (id INTEGER PRIMARY KEY, model TEXT, view TEXT, fields TEXT,
            filters TEXT, slug TEXT, client_id TEXT, query_limit TEXT, created_at TEXT);
        CREATE TABLE sa_look (id INTEGER PRIMARY KEY, title TEXT, query_id INTEGER,
            user_id INTEGER, created_at TEXT, deleted INTEGER);
        CREATE TABLE sa_dashboard (id INTEGER PRIMARY KEY, title TEXT, user_id INTEGER,
            created_at TEXT, deleted INTEGER);
        CREATE TABLE sa_history (id INTEGER PRIMARY KEY, created_at TEXT, completed_at TEXT,
            runtime REAL, status TEXT, source TEXT, is_single_query INTEGER, result_source TEXT,
            message TEXT, connection_name TEXT, cache_key TEXT, rebuild_pdts INTEGER,
            query_id INTEGER, user_id INTEGER, look_id INTEGER, dashboard_id INTEGER);
        CREATE INDEX sa_history_created ON sa_history (created_at);
        CREATE TABLE sa_event (id INTEGER PRIMARY KEY, name TEXT, category TEXT,
            created_at TEXT, user_id INTEGER, is_api_call INTEGER, is_admin INTEGER,
            sudo_user_id INTEGER);
        CREATE INDEX sa_event_created ON sa_event (created_at);
        CREATE TABLE sa_event_attribute (id INTEGER PRIMARY KEY, event_id INTEGER, name TEXT,
            value TEXT);
        CREATE TABLE sa_content_usage (id INTEGER PRIMARY KEY, content_id TEXT, content_type TEXT,
            content_title TEXT, last_accessed_at TEXT, view_count INTEGER, api_count INTEGER,
            embed_count INTEGER, schedule_count INTEGER, favorites_count INTEGER);
        CREATE INDEX sa_content_usage_accessed ON sa_content_usage (last_accessed_at);
        """
    )
    users = []
    for uid in range(1, 41):
        first, last = NAMES[uid % len(NAMES)]
        is_looker = uid == 2
        if is_looker:
            first, last = "Looker", "Support"
        email = None if uid % 13 == 0 else f"user{uid}@example.com"
        users.append(
            (
                uid,
                first,
                last,
                f"{first} {last}",
                email,
                int(is_looker),
                int(uid % 17 == 0),
                _ts(START - timedelta(days=rng.randint(30, 900))),
            )
        )
    conn.executemany("INSERT INTO sa_user VALUES (?,?,?,?,?,?,?,?)", users)
    queries = []
    for qid in range(1, 2501):
        model = rng.choice(MODELS)
        view = "history" if model == "system__activity" else rng.choice(VIEWS)
        fields = ",".join(
            f"{view}.{f}" for f in rng.sample(["id", "created_date", "count", "status", "name"], 3)
        )
        queries.append(
            (
                qid,
                model,
                view,
                fields,
                None if qid % 5 else f'{{"{view}.status":"complete"}}',
                _client_id(rng)[:12],
                None if qid % 9 == 0 else _client_id(rng),
                rng.choice(["500", "5000", "-1", None]),
                _ts(START - timedelta(days=1) + timedelta(seconds=qid * 3600)),
            )
        )
    conn.executemany("INSERT INTO sa_query VALUES (?,?,?,?,?,?,?,?,?)", queries)
    looks = [
        (
            i,
            TITLES[i % len(TITLES)] + f" #{i}",
            rng.randint(1, 2500),
            rng.randint(1, 40),
            _ts(START - timedelta(days=rng.randint(1, 200))),
            int(i % 19 == 0),
        )
        for i in range(1, 61)
    ]
    conn.executemany("INSERT INTO sa_look VALUES (?,?,?,?,?,?)", looks)
    dashes = [
        (
            i,
            TITLES[(i + 3) % len(TITLES)] + f" {i}",
            rng.randint(1, 40),
            _ts(START - timedelta(days=rng.randint(1, 200))),
            int(i % 11 == 0),
        )
        for i in range(1, 31)
    ]
    conn.executemany("INSERT INTO sa_dashboard VALUES (?,?,?,?,?)", dashes)

    # History: ~30k rows; gaps of several days; bursts sharing one second.
    gaps = {15, 16, 17, 18, 50, 51, 52, 88, 89, 90, 91, 92}
    src_names = [s for s, _ in SOURCES]
    src_weights = [w for _, w in SOURCES]
    rows = []
    hid = 0

    def add(created: datetime, burst_source: str | None = None) -> None:
        nonlocal hid
        hid += 1
        source = burst_source or rng.choices(src_names, src_weights)[0]
        r = rng.random()
        status = (
            "complete"
            if r < 0.9
            else ("error" if r < 0.97 else ("killed" if r < 0.99 else "running"))
        )
        runtime = None if status == "running" else round(rng.expovariate(1 / 2.5), 3)
        completed = None if runtime is None else _ts(created + timedelta(seconds=runtime))
        message = rng.choice(ERRORS) if status == "error" else None
        look_id = (
            rng.randint(1, 60)
            if source in ("look", "scheduled_task") and rng.random() < 0.8
            else None
        )
        dash_id = rng.randint(1, 30) if source == "dashboard" else None
        rows.append(
            (
                hid,
                _ts(created),
                completed,
                runtime,
                status,
                source,
                int(rng.random() < 0.8),
                "cache" if rng.random() < 0.25 else "query",
                message,
                rng.choice(["bigquery_prod", "snowflake", "postgres-dev", None]),
                None if rng.random() < 0.1 else f"{rng.getrandbits(64):016x}",
                int(rng.random() < 0.05),
                rng.randint(1, 2500),
                rng.randint(1, 40),
                look_id,
                dash_id,
            )
        )

    for day in range(120):
        if day in gaps:
            continue
        day_start = START + timedelta(days=day)
        n = rng.randint(150, 300)
        for sec in sorted(rng.randrange(86400) for _ in range(n)):
            add(day_start + timedelta(seconds=sec))
        if day % 14 == 3:  # a schedule / dashboard refresh burst
            at = day_start + timedelta(hours=9, seconds=rng.randrange(3600))
            src = "scheduled_task" if day % 28 == 3 else "dashboard"
            for _ in range(rng.randint(200, 500)):
                add(at, src)
    rows.sort(key=lambda r: (r[1], r[0]))
    conn.executemany("INSERT INTO sa_history VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    events = []
    attrs = []
    aid = 0
    for eid in range(1, 8001):
        name, cat = rng.choice(EVENTS)
        created = START + timedelta(seconds=rng.randrange(120 * 86400))
        if (created - START).days in gaps:
            created += timedelta(days=5)
        events.append(
            (
                eid,
                name,
                cat,
                _ts(created),
                rng.randint(1, 40),
                int(name == "api_call"),
                int(rng.random() < 0.1),
                rng.randint(1, 40) if rng.random() < 0.02 else None,
            )
        )
        for key in rng.sample(["ip", "user_agent", "dashboard_id", "query_id", "note"], 2):
            aid += 1
            value = {
                "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                "user_agent": 'Mozilla/5.0 (X11; Linux) "quoted", ok',
                "dashboard_id": str(rng.randint(1, 30)),
                "query_id": str(rng.randint(1, 2500)),
                "note": rng.choice(["naïve café", "行\n2", "🚀🚀", "", None]),
            }[key]
            attrs.append((aid, eid, key, value))
    events.sort(key=lambda r: r[3])
    conn.executemany("INSERT INTO sa_event VALUES (?,?,?,?,?,?,?,?)", events)
    conn.executemany("INSERT INTO sa_event_attribute VALUES (?,?,?,?)", attrs)

    usage = []
    for cid in range(1, 301):
        ctype = rng.choice(["look", "dashboard", "explore"])
        accessed = (
            None if cid % 23 == 0 else _ts(START + timedelta(seconds=rng.randrange(120 * 86400)))
        )
        usage.append(
            (
                cid,
                str(rng.randint(1, 60)) if ctype != "explore" else f"thelook::{rng.choice(VIEWS)}",
                ctype,
                rng.choice(TITLES),
                accessed,
                rng.randint(0, 5000),
                rng.randint(0, 300),
                rng.randint(0, 50),
                rng.randint(0, 20),
                rng.randint(0, 10),
            )
        )
    conn.executemany("INSERT INTO sa_content_usage VALUES (?,?,?,?,?,?,?,?,?,?)", usage)


def _user_view() -> View:
    v = View("user", "sa_user", "id")
    v.column("id", "number", primary_key=True)
    v.column("name", "string")
    v.column("first_name", "string")
    v.column("last_name", "string")
    v.column("email", "string")
    v.column("is_looker", "yesno")
    v.column("is_disabled", "yesno")
    v.dimension_group("created", "created_at", TF_SHORT)
    v.measure("count", "count")
    return v


def _query_view() -> View:
    v = View("query", "sa_query", "id")
    v.column("id", "number", primary_key=True)
    v.column("model", "string")
    v.column("view", "string")
    v.column("fields", "string", description="Fields of the query, comma separated")
    v.column("formatted_filters", "string", "filters")
    v.column("slug", "string")
    v.column("client_id", "string", description="Client id of the query (22 characters)")
    v.column("limit", "string", "query_limit")
    v.dimension_group("created", "created_at", TF_SHORT)
    v.measure("count", "count")
    return v


def _look_view() -> View:
    v = View("look", "sa_look", "id")
    v.column("id", "number", primary_key=True)
    v.column("title", "string")
    v.column("deleted", "yesno")
    v.dimension_group("created", "created_at", TF_SHORT)
    v.measure("count", "count")
    return v


def _dashboard_view() -> View:
    v = View("dashboard", "sa_dashboard", "id")
    v.column("id", "number", primary_key=True)
    v.column("title", "string")
    v.column("deleted", "yesno")
    v.dimension_group("created", "created_at", TF_SHORT)
    v.measure("count", "count")
    return v


def _history_view() -> View:
    v = View("history", "sa_history", "id")
    v.column("id", "number", primary_key=True)
    v.dimension_group("created", "created_at", TF)
    v.dimension_group("completed", "completed_at", TF_SHORT)
    v.column("runtime", "number", description="Query runtime in seconds")
    v.column("status", "string")
    v.column("source", "string")
    v.column("is_single_query", "yesno")
    v.column("result_source", "string")
    v.column("message", "string")
    v.column("connection_name", "string")
    v.column("cache_key", "string")
    v.column("rebuild_pdts", "yesno")
    v.column("query_id", "number", hidden=True)
    v.column("user_id", "number", hidden=True)
    v.column("look_id", "number", hidden=True)
    v.column("dashboard_id", "number", hidden=True)
    v.tier("runtime_tiers", v.col("runtime"), [0, 1, 5, 10, 30, 60, 300])
    v.measure("count", "count")
    v.measure("query_run_count", "count_distinct", v.col("query_id"))
    v.measure("average_runtime", "average", v.col("runtime"))
    v.measure("total_runtime", "sum", v.col("runtime"))
    v.measure("max_runtime", "max", v.col("runtime"))
    v.measure("min_created_time", "min", v.col("created_at"), hidden=True, numeric=False)
    return v


def _event_view() -> View:
    v = View("event", "sa_event", "id")
    v.column("id", "number", primary_key=True)
    v.column("name", "string")
    v.column("category", "string")
    v.dimension_group("created", "created_at", TF)
    v.column("is_api_call", "yesno")
    v.column("is_admin", "yesno")
    v.column("sudo_user_id", "number")
    v.column("user_id", "number", hidden=True)
    v.measure("count", "count")
    return v


def _event_attribute_view() -> View:
    v = View("event_attribute", "sa_event_attribute", "id")
    v.column("id", "number", primary_key=True)
    v.column("name", "string")
    v.column("value", "string")
    v.column("event_id", "number", hidden=True)
    v.measure("count", "count")
    return v


def _content_usage_view() -> View:
    v = View("content_usage", "sa_content_usage", "id")
    v.column("id", "number", primary_key=True)
    v.column("content_id", "string")
    v.column("content_type", "string")
    v.column("content_title", "string")
    v.dimension_group("last_accessed", "last_accessed_at", TF)
    v.column("view_count", "number")
    v.column("api_count", "number")
    v.column("embed_count", "number")
    v.column("schedule_count", "number")
    v.column("favorites_count", "number")
    v.measure("count", "count")
    v.measure("total_views", "sum", v.col("view_count"))
    return v


def build_model() -> Model:
    """The ``system__activity`` model (internal: listed only with ``include_internal=true``)."""
    history, query, user = _history_view(), _query_view(), _user_view()
    look, dashboard = _look_view(), _dashboard_view()
    explores = {
        "history": Explore(
            "history",
            history,
            [
                Join(query, '"history"."query_id" = "query"."id"'),
                Join(user, '"history"."user_id" = "user"."id"'),
                Join(look, '"history"."look_id" = "look"."id"'),
                Join(dashboard, '"history"."dashboard_id" = "dashboard"."id"'),
            ],
            description="Query history: one row per query run",
        ),
        "query": Explore("query", _query_view()),
        "user": Explore("user", _user_view()),
        "look": Explore(
            "look", _look_view(), [Join(_user_view(), '"look"."user_id" = "user"."id"')]
        ),
        "dashboard": Explore(
            "dashboard",
            _dashboard_view(),
            [Join(_user_view(), '"dashboard"."user_id" = "user"."id"')],
        ),
        "event": Explore(
            "event", _event_view(), [Join(_user_view(), '"event"."user_id" = "user"."id"')]
        ),
        "event_attribute": Explore(
            "event_attribute",
            _event_attribute_view(),
            [
                Join(_event_view(), '"event_attribute"."event_id" = "event"."id"'),
                Join(_user_view(), '"event"."user_id" = "user"."id"'),
            ],
        ),
        "content_usage": Explore("content_usage", _content_usage_view()),
    }
    for e in explores.values():
        e.group_label = "System Activity"
    return Model("system__activity", explores, label="System Activity", internal=True)


def build_legacy_model() -> Model:
    """The deprecated ``i__looker`` model over the same tables (looker_ingestion's README uses it).

    Its History explore has the fields that README's example query file selects: ``space.id``,
    ``history.message``, ``history.dashboard_id``, ``query.filters``, ``query.filter_expression``
    and ``query.filter_config`` besides the System Activity ones.
    """
    history = _history_view()
    history.fields = [f for f in history.fields if f.name != "history.dashboard_id"]
    history.column("dashboard_id", "number")
    query = _query_view()
    query.column("filters", "string", "filters")
    query.dimension("filter_expression", "string", "NULL")
    query.dimension("filter_config", "string", "NULL")
    space = View("space", "sa_look", "id")
    space.dimension("id", "number", f"(({space.col('id')} % 7) + 1)", primary_key=True)
    explore = Explore(
        "history",
        history,
        [
            Join(query, '"history"."query_id" = "query"."id"'),
            Join(_user_view(), '"history"."user_id" = "user"."id"'),
            Join(_look_view(), '"history"."look_id" = "look"."id"'),
            Join(space, '"history"."look_id" = "space"."id"'),
            Join(_dashboard_view(), '"history"."dashboard_id" = "dashboard"."id"'),
        ],
        description="Legacy usage model (deprecated in favour of System Activity)",
    )
    return Model("i__looker", {"history": explore}, label="I  Looker", internal=True)
