"""The query string of a user's conversation list, the same in both dialects."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from application.conversations import ListConversationsRequest
from domain.monitoring import SEARCH_MAX_TERMS, SEARCH_TERM_MAX_CHARS
from entrypoints.http.api.admin_filters import text_filter
from entrypoints.http.schema_docs import QUERY_SEARCH

Search = Annotated[
    str | None,
    QueryParameter(
        description="Words that must all appear in the title or in one message "
        f"(case-insensitive, Chinese included): at most {SEARCH_MAX_TERMS} words of at "
        f"most {SEARCH_TERM_MAX_CHARS} characters.",
        schema_extra=QUERY_SEARCH,
    ),
]
Archived = Annotated[
    bool | None,
    QueryParameter(description="true: only archived conversations; false or absent: none."),
]
Pinned = Annotated[
    bool | None,
    QueryParameter(description="true: only pinned conversations; false: only the others."),
]


def list_request(
    owner_id: int, search: str | None, archived: bool | None, pinned: bool | None
) -> ListConversationsRequest:
    return ListConversationsRequest(
        owner_id=owner_id,
        search=text_filter(search, "search"),
        archived=bool(archived),
        pinned=pinned,
    )
