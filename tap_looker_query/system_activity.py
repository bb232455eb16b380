"""What the tap knows about Looker's System Activity model (`system__activity`).

Looker keeps History for 90 days only, and every query the tap runs shows up in History too;
the tap marks its own queries with a client id so that they can be left out.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import typing as t

if t.TYPE_CHECKING:
    from tap_looker_query.specs.model import QuerySpec

#: How long Looker keeps History rows ("the History table is truncated to the past 90 days").
HISTORY_RETENTION_DAYS = 90

#: The prefix of the `client_id` the tap gives every query it runs, so that its own queries are
#: recognisable in System Activity (`query.client_id`) and `exclude_own_queries` can drop them.
CLIENT_ID_PREFIX = "tapLookerQuery"

_HISTORY = ("system__activity", "history")


def is_history(spec: QuerySpec) -> bool:
    """The spec reads System Activity History."""
    return (spec.model, spec.explore) == _HISTORY


def own_client_id() -> str:
    """A fresh 22-character query client id that marks the query as the tap's own."""
    alphabet = string.ascii_letters + string.digits
    tail = "".join(secrets.choice(alphabet) for _ in range(22 - len(CLIENT_ID_PREFIX)))
    return CLIENT_ID_PREFIX + tail


def exclude_own_queries(spec: QuerySpec) -> QuerySpec:
    """A History spec that leaves out the tap's own queries (unless it filters on them)."""
    if not is_history(spec) or "query.client_id" in spec.filters:
        return spec
    own = f"-{CLIENT_ID_PREFIX}%"
    return dataclasses.replace(spec, filters={**spec.filters, "query.client_id": own})
