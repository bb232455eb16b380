"""Query specs: looker_ingestion's format, our extensions, one clear message per problem."""

from __future__ import annotations

import json

import pytest

from tap_looker_query.discovery import check_against_explore
from tap_looker_query.errors import SpecError
from tap_looker_query.schema import LookerField
from tap_looker_query.specs.parse import parse_specs

BASE = {
    "name": "query_history",
    "model": "system__activity",
    "explore": "history",
    "fields": ["history.id", "history.created_time", "user.id"],
}


def spec(**overrides):
    return {**BASE, **overrides}


def problems(config):
    with pytest.raises(SpecError) as info:
        parse_specs(config)
    return info.value.problems


def test_looker_ingestion_format_with_string_numbers():
    [parsed] = parse_specs(
        {
            "queries": [
                spec(
                    filters={"user.is_looker": "No"},
                    sorts=["history.created_time"],
                    limit="10000",
                    metadata={
                        "datetime": "history.created_time",
                        "default_days": "4",
                        "result_format": "csv",
                    },
                )
            ]
        }
    )
    assert parsed.limit == 10000
    assert parsed.default_days == 4
    assert parsed.result_format == "csv"
    assert parsed.replication_property == "history_created_time"
    assert parsed.is_incremental
    assert not parsed.is_manual_backfill


def test_queries_file_holds_one_spec_or_a_list(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(spec()))
    many = tmp_path / "many.json"
    many.write_text(json.dumps([spec(name="a"), spec(name="b")]))
    assert [s.name for s in parse_specs({"queries_file": str(one)})] == ["query_history"]
    assert [s.name for s in parse_specs({"queries_file": str(many)})] == ["a", "b"]
    both = parse_specs({"queries_file": str(many), "queries": [spec(name="c")]})
    assert sorted(s.name for s in both) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"model": "m", "explore": "e", "fields": ["v.a"]},
            "queries[0]: missing required key 'name'",
        ),
        (spec(fields=[]), "query 'query_history': missing required key 'fields'"),
        (spec(name="Query-History"), "query 'Query-History': key 'name' must match"),
        (spec(limit="lots"), "key 'limit' must be a positive whole number or -1"),
        (spec(limit=0), "key 'limit' must be a positive whole number or -1"),
        (spec(metadata={"default_days": "4 days"}), "key 'metadata.default_days'"),
        (spec(metadata={"result_format": "xlsx"}), "key 'metadata.result_format' must be"),
        (
            spec(metadata={"datetime": "history.completed_time"}),
            "'history.completed_time', which is not among 'fields'",
        ),
        (
            spec(metadata={"primary_keys": ["history.idd"]}),
            "names 'history.idd', which is not among 'fields'; did you mean 'history.id'?",
        ),
        (
            spec(fields=["a.b_c", "a_b.c"]),
            "fields 'a.b_c' and 'a_b.c' both become the property 'a_b_c'",
        ),
        (spec(filter={"a": "b"}), "unknown key 'filter'; did you mean 'filters'?"),
        (spec(metadata={"datetme": "x"}), "unknown key 'metadata.datetme'; did you mean"),
        ("not an object", "queries[0]: a query spec must be a JSON object"),
    ],
)
def test_each_problem_names_the_spec_and_key(raw, expected):
    found = problems({"queries": [raw]})
    assert any(expected in problem for problem in found), found


def test_duplicate_names_and_all_problems_reported_together():
    found = problems({"queries": [spec(), spec(), spec(name="x", limit="no")]})
    assert any("duplicate stream name" in p for p in found)
    assert any("query 'x'" in p and "limit" in p for p in found)


def test_no_specs_at_all():
    assert problems({}) == ["no query specs: set 'queries' or 'queries_file' (or both)"]


def test_missing_or_broken_queries_file(tmp_path):
    assert "cannot read it" in problems({"queries_file": str(tmp_path / "nope.json")})[0]
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    assert "not valid JSON" in problems({"queries_file": str(broken)})[0]


EXPLORE = {
    f.name: f
    for f in [
        LookerField(name="history.id", type="number"),
        LookerField(name="history.created_time", type="date_time", is_timeframe=True),
        LookerField(name="history.created_date", type="date_date", is_timeframe=True),
        LookerField(name="history.created_month", type="date_month", is_timeframe=True),
        LookerField(name="user.id", type="number"),
        LookerField(name="history.count", type="count", category="measure"),
    ]
}


def check(**overrides):
    [parsed] = parse_specs({"queries": [spec(**overrides)]})
    return check_against_explore(parsed, EXPLORE)


def test_valid_spec_has_no_problems():
    assert check(metadata={"datetime": "history.created_time"}) == []


def test_unknown_field_suggests_the_closest():
    [problem] = check(fields=["history.id", "history.creatd_time"])
    assert problem == (
        "query 'query_history': field 'history.creatd_time' is not in explore "
        "system__activity::history; did you mean 'history.created_time'?"
    )


def test_datetime_field_must_be_a_time_field():
    [problem] = check(
        fields=["history.id", "history.created_month"],
        metadata={"datetime": "history.created_month"},
    )
    assert "not a time field" in problem
    assert "'metadata.datetime'" in problem


def test_filters_and_sorts_on_unknown_fields():
    found = check(filters={"history.workspace_id": "x"}, sorts=["history.idx desc"])
    assert any("filter on 'history.workspace_id'" in p for p in found)
    assert any("sort on 'history.idx'" in p and "did you mean 'history.id'" in p for p in found)
