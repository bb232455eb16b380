"""The repository's sample_config.json is a valid config (checked offline)."""

from __future__ import annotations

import json

import jsonschema

from tap_looker_query.specs.parse import parse_specs
from tap_looker_query.tap import TapLookerQuery
from tests.helpers import REPO


def test_sample_config_is_valid_for_the_settings_schema():
    """Checked offline: the schema and the specs, without contacting the sample's Looker."""
    sample = json.loads((REPO / "sample_config.json").read_text())
    # As the tap validates its config (the SDK adds its own settings to this schema in place,
    # in a form the 2020-12 metaschema rejects, so the schema itself is not checked here).
    jsonschema.Draft202012Validator(TapLookerQuery.config_jsonschema).validate(sample)
    assert [spec.name for spec in parse_specs(sample)] == [
        "query_history",
        "system_activity_events",
        "weekly_sales",
    ]
