"""The Singer SDK's standard tap tests, against the emulator through the real looker-sdk.

`get_tap_test_class` builds the tap and discovers its streams at import time (to parametrize
the tests), so the emulator starts when this module is imported and stops at exit.
"""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from looker_emulator import LookerEmulator
from tap_looker_query.tap import TapLookerQuery

EMULATOR = LookerEmulator().start()
atexit.register(EMULATOR.stop)

CONFIG = {
    "base_url": EMULATOR.base_url,
    "client_id": EMULATOR.client_id,
    "client_secret": EMULATOR.client_secret,
    "start_date": "2026-10-25T00:00:00Z",
    "queries": [
        {
            "name": "query_history",
            "model": "system__activity",
            "explore": "history",
            "fields": [
                "history.id",
                "history.created_time",
                "history.runtime",
                "history.is_single_query",
                "user.id",
            ],
            "metadata": {"datetime": "history.created_time", "primary_keys": ["history.id"]},
        },
        {
            "name": "events_by_day",
            "model": "system__activity",
            "explore": "event",
            "fields": ["event.created_date", "event.name", "event.count"],
            "sorts": ["event.created_date", "event.name"],
            "limit": 100,
        },
    ],
}

TestTapLookerQuery = get_tap_test_class(
    tap_class=TapLookerQuery,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=200),
    parse_env_config=False,
)
