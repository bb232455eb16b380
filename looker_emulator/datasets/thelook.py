"""Model ``thelook``: an e-commerce explore covering every field-type family the tap maps.

Explore ``order_items`` joins ``users`` and ``products``. It has a dimension group with every
timeframe, a tier (and its hidden ``__sort_`` companion), zipcode, yesno, a duration group,
distance, location, filter-only fields, a parameter and a measure of every type.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from looker_emulator.lookml import TIMEFRAMES, Explore, Join, Model, QueryContext, View

if TYPE_CHECKING:
    import sqlite3

SEED = 4242
START = datetime(2025, 1, 1, tzinfo=UTC)
CATEGORIES = ["Jeans", "Tops & Tees", "Socks", "Outerwear", "Accessories", "Swim", "Sweaters"]
BRANDS = [
    "Levi's",
    "Calvin Klein",
    "Ray-Ban",
    "Carhartt",
    "Hanes",
    "Columbia",
    "Ünïcødé Co",
    "東京",
]
STATUSES = ["Complete", "Shipped", "Processing", "Cancelled", "Returned"]
CITIES = [
    ("New York", "New York", "10001", 40.7506, -73.9972),
    ("San Francisco", "California", "94103", 37.7725, -122.4091),
    ("Chicago", "Illinois", "60601", 41.8858, -87.6181),
    ("Austin", "Texas", "78701", 30.2711, -97.7437),
    ("Boston", "Massachusetts", "02108", 42.3576, -71.0636),
    ("Seattle", "Washington", "98101", 47.6114, -122.3305),
]
DCS = [
    ("Memphis TN", 35.1174, -89.9711),
    ("Chicago IL", 41.8369, -87.6847),
    ("Houston TX", 29.7604, -95.3698),
]


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def build_tables(conn: sqlite3.Connection) -> None:
    """Create and fill ``thelook``'s tables."""
    rng = random.Random(SEED)
    conn.executescript(
        """
        CREATE TABLE tl_users (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
            email TEXT, age INTEGER, gender TEXT, city TEXT, state TEXT, zip TEXT,
            latitude REAL, longitude REAL, created_at TEXT);
        CREATE TABLE tl_products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, brand TEXT,
            retail_price REAL, cost REAL, dc_name TEXT, dc_latitude REAL, dc_longitude REAL);
        CREATE TABLE tl_order_items (id INTEGER PRIMARY KEY, order_id INTEGER, user_id INTEGER,
            product_id INTEGER, status TEXT, sale_price REAL, shipping_cost REAL,
            created_at TEXT, shipped_at TEXT, delivered_at TEXT, returned_at TEXT);
        CREATE INDEX tl_order_items_created ON tl_order_items (created_at);
        """
    )
    users = []
    for uid in range(1, 401):
        city, state, zipcode, lat, lon = rng.choice(CITIES)
        users.append(
            (
                uid,
                rng.choice(["Ann", "Bo", "Zoë", "李", "O'Neil"]),
                rng.choice(["Smith", "García", "Nguyễn"]),
                None if uid % 29 == 0 else f"customer{uid}@example.org",
                None if uid % 31 == 0 else rng.randint(12, 80),
                rng.choice(["Female", "Male"]),
                city,
                state,
                zipcode,
                lat + rng.uniform(-0.05, 0.05),
                lon + rng.uniform(-0.05, 0.05),
                _ts(START - timedelta(days=rng.randint(0, 700), seconds=rng.randrange(86400))),
            )
        )
    conn.executemany("INSERT INTO tl_users VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", users)
    products = []
    for pid in range(1, 151):
        dc = rng.choice(DCS)
        retail = round(rng.uniform(5, 250), 2)
        products.append(
            (
                pid,
                f"{rng.choice(BRANDS)} item {pid}" + (', "limited"' if pid % 10 == 0 else ""),
                rng.choice(CATEGORIES),
                rng.choice(BRANDS),
                retail,
                round(retail * rng.uniform(0.3, 0.7), 2),
                dc[0],
                dc[1],
                dc[2],
            )
        )
    conn.executemany("INSERT INTO tl_products VALUES (?,?,?,?,?,?,?,?,?)", products)
    items = []
    oid = 0
    iid = 0
    t = START
    while iid < 3000:
        oid += 1
        t += timedelta(seconds=rng.randint(60, 18000))
        user = rng.randint(1, 400)
        shipping = round(rng.uniform(0, 15), 2)
        for _ in range(rng.randint(1, 4)):
            iid += 1
            prod = products[rng.randrange(len(products))]
            status = rng.choice(STATUSES)
            shipped = (
                None
                if status in ("Processing", "Cancelled")
                else t + timedelta(hours=rng.randint(2, 96))
            )
            delivered = (
                shipped + timedelta(hours=rng.randint(12, 200))
                if shipped and status != "Shipped"
                else None
            )
            returned = (
                delivered + timedelta(days=rng.randint(1, 20))
                if status == "Returned" and delivered
                else None
            )
            items.append(
                (
                    iid,
                    oid,
                    user,
                    prod[0],
                    status,
                    None if iid % 97 == 0 else round(prod[4] * rng.uniform(0.6, 1.0), 2),
                    shipping,
                    _ts(t),
                    shipped and _ts(shipped),
                    delivered and _ts(delivered),
                    returned and _ts(returned),
                )
            )
    conn.executemany("INSERT INTO tl_order_items VALUES (?,?,?,?,?,?,?,?,?,?,?)", items)


def _distance(a_lat: str, a_lon: str, b_lat: str, b_lon: str) -> str:
    # Equirectangular approximation in kilometers (SQLite has no trig functions by default).
    return (
        f"ROUND(6371.0 * sqrt((({b_lat}) - ({a_lat})) * (({b_lat}) - ({a_lat})) * 0.000304617 + "
        f"(({b_lon}) - ({a_lon})) * (({b_lon}) - ({a_lon})) * 0.000304617 * 0.6), 3)"
    )


def build_model() -> Model:
    """The ``thelook`` model with explore ``order_items``."""
    users = View("users", "tl_users", "id")
    users.column("id", "number", primary_key=True)
    users.dimension(
        "name",
        "string",
        f"{users.col('first_name')} || ' ' || {users.col('last_name')}",
        lookml_sql="${first_name} || ' ' || ${last_name}",
    )
    users.column("email", "string")
    users.column("age", "number")
    users.tier("age_tier", users.col("age"), [0, 10, 20, 30, 40, 50, 60, 70])
    users.column("gender", "string")
    users.column("city", "string")
    users.column("state", "string")
    users.column("zip", "zipcode")
    users.dimension(
        "location",
        "location",
        f"CAST({users.col('latitude')} AS TEXT) || ',' || CAST({users.col('longitude')} AS TEXT)",
        lookml_sql="sql_latitude: ${TABLE}.latitude ;; sql_longitude: ${TABLE}.longitude",
    )
    users.dimension_group("created", "created_at", ["raw", "time", "date", "week", "month", "year"])
    users.measure("count", "count")
    users.measure("average_age", "average", users.col("age"))
    users.measure("total_age", "sum", users.col("age"), hidden=True)

    products = View("products", "tl_products", "id")
    products.column("id", "number", primary_key=True)
    products.column("name", "string")
    products.column("category", "string")
    products.column("brand", "string")
    products.column("retail_price", "number")
    products.column("cost", "number")
    products.column("distribution_center_name", "string", "dc_name")
    products.measure("count", "count")
    products.measure("average_retail_price", "average", products.col("retail_price"))

    oi = View("order_items", "tl_order_items", "id")
    oi.column("id", "number", primary_key=True)
    oi.column("order_id", "number")
    oi.column("status", "string")
    oi.column("sale_price", "number", value_format_name="usd")
    oi.column(
        "shipping_cost", "number", description="Order-level shipping cost (same on each item)"
    )
    oi.tier("sale_price_tier", oi.col("sale_price"), [0, 10, 20, 50, 100, 200])
    oi.dimension(
        "is_returned",
        "yesno",
        f"CASE WHEN {oi.col('returned_at')} IS NOT NULL THEN 'Yes' ELSE 'No' END",
        lookml_sql="${returned_raw} IS NOT NULL",
    )
    oi.dimension_group("created", "created_at", list(TIMEFRAMES))
    oi.dimension_group("shipped", "shipped_at", ["raw", "time", "date", "week", "month"])
    oi.dimension_group("delivered", "delivered_at", ["raw", "time", "date"])
    oi.duration_group(
        "fulfillment", oi.col("created_at"), oi.col("delivered_at"), ["day", "hour", "minute"]
    )
    oi.dimension(
        "distance_to_distribution_center",
        "distance",
        _distance(
            users.col("latitude"),
            users.col("longitude"),
            products.col("dc_latitude"),
            products.col("dc_longitude"),
        ),
        lookml_sql=(
            "start_location_field: users.location ;; "
            "end_location_field: products.dc_location ;; units: kilometers"
        ),
    )
    oi.parameter(
        "price_basis",
        ["sale_price", "cost"],
        "sale_price",
        description="Which price metric_value uses",
    )

    def metric_value(ctx: QueryContext) -> str:
        basis = ctx.parameters.get("order_items.price_basis", "sale_price")
        return products.col("cost") if basis == "cost" else oi.col("sale_price")

    oi.dimension("metric_value", "number", metric_value, lookml_sql="{% parameter price_basis %}")
    oi.filter_only(
        "category_filter", "string", "products.category", description="Filters product category"
    )
    oi.filter_only("created_filter", "date", "order_items.created_time")
    price = oi.col("sale_price")
    oi.measure("count", "count")
    oi.measure("order_count", "count_distinct", oi.col("order_id"))
    oi.measure("total_sale_price", "sum", price)
    oi.measure("average_sale_price", "average", price)
    oi.measure("min_sale_price", "min", price)
    oi.measure("max_sale_price", "max", price)
    oi.measure("median_sale_price", "median", price)
    oi.measure("p75_sale_price", "percentile", price, percentile=75)
    ship = oi.col("shipping_cost")
    key = oi.col("order_id")
    oi.measure("total_shipping", "sum_distinct", ship, distinct_key=key)
    oi.measure("average_shipping", "average_distinct", ship, distinct_key=key)
    oi.measure("median_shipping", "median_distinct", ship, distinct_key=key)
    oi.measure("p90_shipping", "percentile_distinct", ship, distinct_key=key, percentile=90)
    oi.measure("list_of_statuses", "list", oi.col("status"))
    oi.measure(
        "average_price_per_order",
        "number",
        "1.0 * ${order_items.total_sale_price} / NULLIF(${order_items.order_count}, 0)",
    )
    oi.measure("latest_status", "string", f"MAX({oi.col('status')})")
    oi.measure("most_recent_order_date", "date", f"MAX({oi.col('created_at')})")
    oi.measure("any_returned", "yesno", f"MAX({oi.col('returned_at')}) IS NOT NULL")
    oi.measure("running_total_sale_price", "running_total", "${order_items.total_sale_price}")
    oi.measure("percent_of_total_sale_price", "percent_of_total", "${order_items.total_sale_price}")
    oi.measure("percent_change_count", "percent_of_previous", "${order_items.count}")

    explore = Explore(
        "order_items",
        oi,
        [
            Join(users, '"order_items"."user_id" = "users"."id"'),
            Join(products, '"order_items"."product_id" = "products"."id"'),
        ],
        description="Order items with users and products",
    )
    return Model("thelook", {"order_items": explore}, label="The Look")
