"""The chat model as operators see it: every call's model, provider and tokens go to
the request's log line and, with metrics on, to ``ChatMetrics``. A decorator over the
ChatModel port, so the use cases know nothing of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Protocol

from adapters.telemetry.request_context import current_request
from application.errors import ModelFailure
from application.ports import (
    CONTENT_FILTER,
    ChatCompletion,
    ChatDelta,
    ChatModel,
    ChatRequest,
    ModelCatalog,
    TokenUsage,
)

COMPLETED = "completed"
FAILED = "failed"
PARTIAL = "partial"
BLOCKED = "blocked"
CANCELLED = "cancelled"


class CallMetrics(Protocol):
    def stream_started(self) -> None: ...

    def stream_ended(self) -> None: ...

    def first_token(self, provider: str, model: str, seconds: float) -> None: ...

    def call_ended(
        self, provider: str, model: str, outcome: str, usage: TokenUsage | None, seconds: float
    ) -> None: ...


class ObservedChatModel:
    def __init__(
        self, inner: ChatModel, catalog: ModelCatalog, metrics: CallMetrics | None
    ) -> None:
        self._inner = inner
        self._catalog = catalog
        self._metrics = metrics

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        started = time.perf_counter()
        try:
            completion = await self._inner.complete(request)
        except ModelFailure:
            self._ended(request, None, None, FAILED, None, started)
            raise
        except asyncio.CancelledError:
            self._ended(request, None, None, CANCELLED, None, started)
            raise
        outcome = BLOCKED if completion.finish_reason == CONTENT_FILTER else COMPLETED
        self._ended(
            request, completion.model, completion.provider, outcome, completion.usage, started
        )
        return completion

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        started = time.perf_counter()
        model = provider = finish_reason = None
        usage: TokenUsage | None = None
        answered = ended = failed = False
        metrics = self._metrics
        if metrics is not None:
            metrics.stream_started()
        try:
            async for delta in self._inner.stream(request):
                if not answered and (delta.text or delta.tool_calls):
                    answered = True
                    if metrics is not None:
                        metrics.first_token(
                            delta.provider or "",
                            delta.model or request.model,
                            time.perf_counter() - started,
                        )
                model, provider = delta.model or model, delta.provider or provider
                usage = delta.usage or usage
                finish_reason = delta.finish_reason or finish_reason
                yield delta
            ended = True
        except ModelFailure:
            failed = True
            raise
        finally:
            if metrics is not None:
                metrics.stream_ended()
            outcome = _stream_outcome(finish_reason, answered, ended=ended, failed=failed)
            self._ended(request, model, provider, outcome, usage, started)

    def _ended(
        self,
        request: ChatRequest,
        model: str | None,
        provider: str | None,
        outcome: str,
        usage: TokenUsage | None,
        started: float,
    ) -> None:
        model = model or request.model
        if provider is None:
            info = self._catalog.get(request.model)
            provider = "" if info is None else info.provider
        facts = current_request()
        if facts is not None:
            facts.model, facts.provider = model, provider
            if usage is not None:
                facts.prompt_tokens = usage.prompt_tokens
                facts.completion_tokens = usage.completion_tokens
        if self._metrics is not None:
            seconds = time.perf_counter() - started
            self._metrics.call_ended(provider, model, outcome, usage, seconds)


def _stream_outcome(finish_reason: str | None, answered: bool, *, ended: bool, failed: bool) -> str:
    if failed:
        return PARTIAL if answered else FAILED
    if finish_reason is not None:  # its reader may stop at the last piece: it has it all
        return BLOCKED if finish_reason == CONTENT_FILTER else COMPLETED
    if ended:  # the provider stopped without saying why
        return PARTIAL if answered else FAILED
    return CANCELLED  # its reader went away
