"""`QueryBody`: one Looker query as the run endpoints take it (`WriteQuery`)."""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class QueryBody:
    """A Looker query as the run endpoint takes it (`WriteQuery`)."""

    model: str
    view: str
    fields: tuple[str, ...]
    filters: Mapping[str, str]
    sorts: tuple[str, ...]
    limit: int
    query_timezone: str
    filter_expression: str | None = None
    client_id: str | None = None
    pivots: tuple[str, ...] = ()
    #: Custom fields and table calculations, as Looker's JSON text.
    dynamic_fields: str | None = None
    column_limit: int | None = None
    #: Ask Looker to compute table calculations (a run parameter, not part of the body).
    server_table_calcs: bool = False
    #: How logs name this query (its spec and window); never sent to Looker.
    label: str = field(default="", compare=False)

    def as_json(self) -> dict[str, t.Any]:
        """The request body; `limit` is a string in Looker's API."""
        body: dict[str, t.Any] = {
            "model": self.model,
            "view": self.view,
            "fields": list(self.fields),
            "filters": dict(self.filters),
            "sorts": list(self.sorts),
            "limit": str(self.limit),
            "query_timezone": self.query_timezone,
        }
        if self.filter_expression:
            body["filter_expression"] = self.filter_expression
        if self.client_id:
            body["client_id"] = self.client_id
        if self.pivots:
            body["pivots"] = list(self.pivots)
        if self.dynamic_fields:
            body["dynamic_fields"] = self.dynamic_fields
        if self.column_limit is not None:
            body["column_limit"] = str(self.column_limit)
        return body

    def serialize(self) -> bytes:
        """The JSON request body."""
        return json.dumps(self.as_json()).encode("utf-8")
