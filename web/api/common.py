"""Pieces every resource router uses: the id path parameter and the paged list model."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, Field

from partnercast.web.problems import PROBLEM_RESPONSES

MAX_ID = 2_147_483_647
Item = TypeVar("Item")

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="The resource's id.")]
QueryId = Annotated[int | None, Field(ge=1, le=MAX_ID)]


class Page(BaseModel, Generic[Item]):
    """One page of a list: ``next`` is the link to the next page, null on the last."""

    data: list[Item]
    next: str | None = Field(description="The next page's URL (same filters), or null.")


ERRORS = PROBLEM_RESPONSES
