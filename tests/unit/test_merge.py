"""Merged results: property names and collisions, the left join, and resolving a merged tile."""

from __future__ import annotations

from tap_looker_query.engine.merge import index, join
from tap_looker_query.specs.dynamic import parse_dynamic_fields
from tap_looker_query.specs.merge import MergedSpec, MergeSource, merged_columns
from tap_looker_query.specs.model import QuerySpec, SavedSpec
from tap_looker_query.specs.sources import dashboard_specs


def props(*fields):
    return [(name, name.replace(".", "_")) for name in fields]


def added_spec(*fields):
    return QuerySpec(name="t", model="m", explore="e", fields=fields)


def test_properties_keep_the_primarys_names_and_rename_collisions_by_position():
    columns = merged_columns(
        ["a_key", "a_count", "a_count_2"],
        [
            (props("b.key", "a.count", "b.extra"), ["b.key"]),
            (props("c.key", "a.count", "b.extra"), ["c.key"]),
        ],
    )
    assert columns == [
        (("a_count", "a_count_2_2"), ("b_extra", "b_extra")),  # a_count_2 is the primary's
        (("a_count", "a_count_3"), ("b_extra", "b_extra_3")),
    ]


def test_merge_fields_are_left_out_the_primarys_carry_their_values():
    [columns] = merged_columns(["a_day", "a_n"], [(props("b.date", "b.n"), ["b.date"])])
    assert columns == (("b_n", "b_n"),)


def test_a_source_querys_custom_fields_keep_their_own_property_names():
    problems: list[str] = []
    source = QuerySpec(
        name="t",
        model="m",
        explore="e",
        fields=("b.key", "b.count", "Share %"),
        dynamic_fields=tuple(
            parse_dynamic_fields(
                [{"table_calculation": "Share %", "expression": "1", "_type_hint": "number"}],
                "test",
                problems,
            )
        ),
    )
    assert problems == []
    [columns] = merged_columns(["a_key", "share"], [(source.properties, ["b.key"])])
    assert columns == (("b_count", "b_count"), ("share", "share_2"))


def source(columns, pairs=(("b.key", "a.key"),)):
    return MergeSource(added_spec("b.key", "b.v"), pairs, columns)


def test_join_keeps_unmatched_primary_rows_with_nulls_and_repeats_multiple_matches():
    returns = source((("b_v", "v"),))
    found = index(
        returns,
        [
            {"b_key": 1, "b_v": "x"},
            {"b_key": 1, "b_v": "y"},
            {"b_key": 3, "b_v": "z"},
            {"b_key": None, "b_v": "null key"},
        ],
    )
    primary = [{"a_key": 1, "n": 10}, {"a_key": 2, "n": 20}, {"a_key": None, "n": 30}]
    assert join(primary, [(returns, found)]) == [
        {"a_key": 1, "n": 10, "v": "x"},
        {"a_key": 1, "n": 10, "v": "y"},
        {"a_key": 2, "n": 20, "v": None},
        {"a_key": None, "n": 30, "v": None},  # a null merge value matches nothing
    ]


def test_several_added_queries_each_match_the_primary_and_combine():
    first = source((("b_v", "v"),))
    second = MergeSource(added_spec("c.other", "c.w"), (("c.other", "a.other"),), (("c_w", "w"),))
    found_first = index(first, [{"b_key": 1, "b_v": "x"}, {"b_key": 1, "b_v": "y"}])
    found_second = index(second, [{"c_other": "p", "c_w": 1}, {"c_other": "p", "c_w": 2}])
    merged = join([{"a_key": 1, "a_other": "p"}], [(first, found_first), (second, found_second)])
    assert [(r["v"], r["w"]) for r in merged] == [("x", 1), ("x", 2), ("y", 1), ("y", 2)]


def test_merge_on_two_fields_needs_both_to_match():
    both = source((("b_v", "v"),), pairs=(("b.key", "a.key"), ("b.v", "a.v")))
    found = index(both, [{"b_key": 1, "b_v": "x"}])
    merged = join([{"a_key": 1, "a_v": "x"}, {"a_key": 1, "a_v": "y"}], [(both, found)])
    assert [r["v"] for r in merged] == ["x", None]


QUERY_A = {
    "id": "1",
    "model": "m",
    "view": "e",
    "fields": ["e.category", "e.count"],
    "filters": {"e.status": "done"},
    "limit": "9000",
}
QUERY_B = {"id": "2", "model": "m", "view": "e", "fields": ["e.category", "e.gender", "e.count"]}


def merge(**kw):
    return {
        "id": "7",
        "source_queries": [
            {"name": "A", "query_id": "1", "merge_fields": None},
            {
                "name": "B",
                "query_id": "2",
                "merge_fields": [{"field_name": "e.category", "source_field_name": "e.category"}],
            },
        ],
        **kw,
    }


def tile(listen=()):
    return {
        "id": "9",
        "type": "vis",
        "title": "Sales vs returns",
        "merge_result_id": "7",
        "result_maker": {
            "filterables": [
                {"model": "m", "view": "e", "name": "B", "listen": list(listen)},
                {"model": "m", "view": "e", "name": "A", "listen": []},
            ]
        },
    }


def resolve_tile(content, element=None, dashboard=None):
    saved = SavedSpec("d", "dashboard_id", "3")
    return dashboard_specs(saved, dashboard or {}, [element or tile()], {"7": content})


def test_a_merged_tile_resolves_to_its_primary_with_the_added_query():
    listen = [{"dashboard_filter_name": "Day", "field": "e.day"}]
    dashboard = {"dashboard_filters": [{"name": "Day", "default_value": "7 days"}]}
    resolved = resolve_tile((merge(), [QUERY_A, QUERY_B]), tile(listen), dashboard)
    assert resolved.problems == []
    [spec] = resolved.specs
    assert isinstance(spec, MergedSpec)
    assert spec.name == "d_sales_vs_returns"
    assert spec.fields == ("e.category", "e.count")
    assert spec.limit == 5000  # Looker merges at most 5,000 rows of each source query
    assert spec.filters == {"e.status": "done"}  # the filterable named 'A' listens to nothing
    [added] = spec.sources
    assert added.spec.filters == {"e.day": "7 days"}  # matched by name, not position
    assert added.pairs == (("e.category", "e.category"),)
    assert spec.merged_properties == ["e_category", "e_count", "e_gender", "e_count_2"]
    assert "source query 2 'B'" in added.spec.label


def test_merges_the_tap_cannot_reproduce_become_refusals_naming_the_tile():
    cases = {
        "the merge's dynamic_fields": (merge(dynamic_fields='[{"table_calculation":"x"}]'), None),
        "pivoted on e.gender": (merge(pivots=["e.gender"]), None),
        "column_limit (50)": (merge(column_limit="50"), None),
        "source query 2 is pivoted": (merge(), {**QUERY_B, "pivots": ["e.gender"]}),
        "source query 2 merges on 'e.nope'": (
            merge(
                source_queries=[
                    {"query_id": "1"},
                    {
                        "query_id": "2",
                        "merge_fields": [
                            {"field_name": "e.category", "source_field_name": "e.nope"}
                        ],
                    },
                ]
            ),
            None,
        ),
        "source query 2 has no merge fields": (
            merge(source_queries=[{"query_id": "1"}, {"query_id": "2"}]),
            None,
        ),
    }
    for reason, (merge_query, second) in cases.items():
        resolved = resolve_tile((merge_query, [QUERY_A, second or QUERY_B]))
        [spec] = resolved.specs
        assert resolved.problems == []
        assert isinstance(spec, MergedSpec)
        assert spec.refusal is not None
        assert spec.refusal.startswith(
            "query 'd_sales_vs_returns' (dashboard 3 tile 'Sales vs returns'): the tap cannot "
            "reproduce this merged-results tile"
        )
        assert reason in spec.refusal, spec.refusal


def test_a_merge_query_that_cannot_be_read_is_a_refusal_not_a_config_error():
    resolved = resolve_tile("merge query 7 or one of its source queries does not exist")
    [spec] = resolved.specs
    assert resolved.problems == []
    assert "does not exist" in str(getattr(spec, "refusal", ""))
