"""The facts of the request being served, for its log line: one object per request in a
context variable, so that what the chat model learns (model, provider, tokens) reaches
the access log without passing through the use cases. A streamed reply's generation task
is started inside the request, so it shares the same object (asyncio copies the context,
not the object)."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class RequestFacts:
    request_id: str
    user_id: int | None = None
    model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


_CURRENT: ContextVar[RequestFacts | None] = ContextVar("parley_request", default=None)


def begin_request(request_id: str) -> tuple[RequestFacts, Token[RequestFacts | None]]:
    facts = RequestFacts(request_id=request_id)
    return facts, _CURRENT.set(facts)


def end_request(token: Token[RequestFacts | None]) -> None:
    _CURRENT.reset(token)


def current_request() -> RequestFacts | None:
    return _CURRENT.get()


def current_request_id() -> str | None:
    facts = _CURRENT.get()
    return None if facts is None else facts.request_id
