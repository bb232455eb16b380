"""Ready-made specs for Looker's System Activity (model `system__activity`).

`preset: history` expands to a curated spec that a user can override key by key. The fields are
the ones Looker's System Activity explores have; Looker keeps History for 90 days only (Event
is pruned to 1 million rows), which is why landing it in a warehouse matters.
"""

from __future__ import annotations

import typing as t

PRESETS: dict[str, dict[str, t.Any]] = {
    "history": {
        "model": "system__activity",
        "explore": "history",
        "fields": [
            "history.id",
            "history.created_time",
            "history.runtime",
            "history.is_single_query",
            "query.id",
            "query.model",
            "query.view",
            "user.id",
            "look.id",
            "dashboard.id",
        ],
        "sorts": ["history.created_time"],
        "metadata": {
            "datetime": "history.created_time",
            "primary_keys": ["history.id"],
            "default_days": 90,
            # A running query's row completes later (status, runtime change), and Elite
            # System Activity refreshes History every 10 minutes: re-read two hours.
            "lookback_minutes": 120,
        },
    },
    "event": {
        "model": "system__activity",
        "explore": "event",
        "fields": ["event.id", "event.name", "event.created_time", "user.id"],
        "sorts": ["event.created_time"],
        # Elite System Activity refreshes Event every 10 minutes: rows arrive late.
        "metadata": {
            "datetime": "event.created_time",
            "primary_keys": ["event.id"],
            "lookback_minutes": 30,
        },
    },
    "event_attribute": {
        "model": "system__activity",
        "explore": "event_attribute",
        "fields": [
            "event_attribute.id",
            "event_attribute.name",
            "event_attribute.value",
            "event.id",
            "event.created_time",
        ],
        "sorts": ["event.created_time"],
        "metadata": {
            "datetime": "event.created_time",
            "primary_keys": ["event_attribute.id"],
            "lookback_minutes": 30,
        },
    },
    "query": {
        "model": "system__activity",
        "explore": "query",
        "fields": ["query.id", "query.model", "query.view", "query.slug", "query.client_id"],
        "sorts": ["query.id"],
        "limit": -1,
        "metadata": {"primary_keys": ["query.id"]},
    },
    "user": {
        "model": "system__activity",
        "explore": "user",
        "fields": ["user.id", "user.name", "user.email", "user.is_looker", "user.is_disabled"],
        "sorts": ["user.id"],
        "limit": -1,
        "metadata": {"primary_keys": ["user.id"]},
    },
    "content_usage": {
        "model": "system__activity",
        "explore": "content_usage",
        "fields": [
            "content_usage.id",
            "content_usage.content_id",
            "content_usage.content_type",
            "content_usage.last_accessed_time",
            "content_usage.view_count",
        ],
        "sorts": ["content_usage.last_accessed_time"],
        # Rows are updated in place as content is used again: the bookmark follows the last
        # access, and targets upsert on the key.
        # Elite System Activity refreshes content usage every 24 hours: re-read 25.
        "metadata": {
            "datetime": "content_usage.last_accessed_time",
            "primary_keys": ["content_usage.id"],
            "lookback_minutes": 1500,
        },
    },
    "look": {
        "model": "system__activity",
        "explore": "look",
        "fields": ["look.id", "look.title", "look.deleted", "look.created_time"],
        "sorts": ["look.id"],
        "limit": -1,
        "metadata": {"primary_keys": ["look.id"]},
    },
    "dashboard": {
        "model": "system__activity",
        "explore": "dashboard",
        "fields": [
            "dashboard.id",
            "dashboard.title",
            "dashboard.deleted",
            "dashboard.created_time",
        ],
        "sorts": ["dashboard.id"],
        "limit": -1,
        "metadata": {"primary_keys": ["dashboard.id"]},
    },
}
