"""Run the tap: `python -m tap_looker_query`."""

from __future__ import annotations

from tap_looker_query.tap import TapLookerQuery

TapLookerQuery.cli()
