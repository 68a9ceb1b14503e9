"""One pagination convention for every list: limit/offset with a known total."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if not 1 <= self.limit <= MAX_LIMIT:
            errors["limit"] = [f"Ensure this value is between 1 and {MAX_LIMIT}."]
        if not 0 <= self.offset <= MAX_OFFSET:
            errors["offset"] = [f"Ensure this value is between 0 and {MAX_OFFSET}."]
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    request: PageRequest
