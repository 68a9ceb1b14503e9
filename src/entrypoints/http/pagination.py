"""The list convention: bare JSON arrays, ``limit``/``offset`` query parameters,
the total in ``X-Total-Count`` and next/prev links in an RFC 8288 ``Link`` header."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.params import QueryParameter

from application.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, Page, PageRequest

T = TypeVar("T")

PAGINATION_HEADERS = [
    ResponseHeader(
        name="X-Total-Count", description="Items in the whole list.", documentation_only=True
    ),
    ResponseHeader(
        name="Link",
        description='RFC 8288 links to the next and previous pages (rel="next", rel="prev").',
        documentation_only=True,
    ),
]


def page_request(
    limit: Annotated[
        int,
        QueryParameter(
            description=f"Page size, 1..{MAX_LIMIT}.",
            schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
        ),
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int,
        QueryParameter(
            description="Items to skip, 0 or more.",
            schema_extra={"minimum": 0, "maximum": MAX_OFFSET},
        ),
    ] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


def paged(request: Request[Any, Any, Any], page: Page[Any], body: list[T]) -> Response[list[T]]:
    headers = {"X-Total-Count": str(page.total)}
    links = []
    limit, offset = page.request.limit, page.request.offset
    if offset + limit < page.total:
        links.append(f'<{_with(request, limit, offset + limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{_with(request, limit, max(offset - limit, 0))}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return Response(body, headers=headers)


def _with(request: Request[Any, Any, Any], limit: int, offset: int) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}
    query.update(limit=str(limit), offset=str(offset))
    return str(request.url.with_replacements(query=urlencode(query)))
