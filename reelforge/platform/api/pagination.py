"""One list shape for every paginated route: OpenAI's `{"object": "list", "data", "first_id", "last_id", "has_more"}`."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel

Item = TypeVar("Item", bound=BaseModel)

Order = Annotated[
    Literal["asc", "desc"], Query(description="Creation order: newest first (desc) or oldest first (asc).")
]
# Page sizes are query parameters validated by FastAPI, so a bad one is a 400 naming `limit`.
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
FileLimit = Annotated[int, Query(ge=1, le=10_000, description="Page size, 1 to 10000.")]
AuditLimit = Annotated[int, Query(ge=1, le=1000, description="Page size, 1 to 1000.")]


class Page(BaseModel, Generic[Item]):
    """One page of a list; pass its `last_id` as `after` for the next page."""

    object: Literal["list"] = "list"
    data: list[Item]
    first_id: str | int | None
    last_id: str | int | None
    has_more: bool


def page_of(item_type: type[Item], items: list[Item], has_more: bool) -> Page[Item]:
    """A page of response objects (each has an `id`)."""
    return Page[item_type](
        data=items, first_id=items[0].id if items else None, last_id=items[-1].id if items else None, has_more=has_more
    )
