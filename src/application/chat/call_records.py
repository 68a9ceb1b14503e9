"""The record of every call no conversation keeps: written however the call ends, with
what it is billed, settling its budget reservation."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from application.budgets import Metering, Reservation
from application.errors import ModelFailure
from application.ports import (
    CONTENT_FILTER,
    ChatRequest,
    Clock,
    ModelCatalog,
    TokenUsage,
    UnitOfWork,
)
from domain.conversation import MessageStatus
from domain.model_calls import ModelCall


@dataclass(frozen=True, kw_only=True)
class PreparedCall:
    request: ChatRequest
    reservation: Reservation | None  # what the call holds of the user's budget


_WRITING: set[asyncio.Task[None]] = set()


class CallRecorder:
    """Writes a call's usage record, even when the caller has gone: the write runs on
    in its own task if the request is cancelled. A call that failed before any answer
    is recorded against the requested model's provider."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, catalog: ModelCatalog, metering: Metering
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._catalog = catalog
        self._metering = metering

    async def record(self, owner_id: int, call: PreparedCall, outcome: CallOutcome) -> None:
        """Write the record with what the call is billed, settling its reservation."""
        request = call.request
        if outcome.provider is None and (model := self._catalog.get(request.model)):
            outcome.provider = model.provider
        bill = self._metering.bill(request, outcome.model, outcome.usage, outcome.text)
        record = replace(
            outcome.call(owner_id, request.model, self._clock),
            billed_tokens=bill.tokens,
            cost_nanos=bill.cost_nanos,
        )
        task = asyncio.ensure_future(self._write(record, call.reservation))
        _WRITING.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(_WRITING.discard)
        await asyncio.shield(task)

    async def _write(self, record: ModelCall, reservation: Reservation | None) -> None:
        try:
            async with self._uow as uow:
                await uow.model_calls.add(record)
                await self._metering.settle(uow, reservation)
                await uow.commit()
        finally:
            self._metering.settled(reservation)


@dataclass(kw_only=True)
class CallOutcome:
    """How a call ended, gathered as it goes."""

    started: float  # time.perf_counter() when the model was asked
    text: str = ""
    model: str | None = None
    provider: str | None = None
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    failure: ModelFailure | None = None

    def call(self, owner_id: int, requested_model: str, clock: Clock) -> ModelCall:
        usage = self.usage or TokenUsage()
        return ModelCall(
            user_id=owner_id,
            model=self.model or requested_model,
            provider=self.provider,
            status=self._status(),
            created_at=clock.now(),
            latency_ms=round((time.perf_counter() - self.started) * 1000),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            finish_reason=self.finish_reason,
            error_code=None if self.failure is None else self.failure.code,
        )

    def _status(self) -> MessageStatus:
        if self.failure is not None:
            return MessageStatus.PARTIAL if self.text else MessageStatus.FAILED
        if self.finish_reason is None:  # the caller left before the end
            return MessageStatus.PARTIAL if self.text else MessageStatus.FAILED
        if self.finish_reason == CONTENT_FILTER:
            return MessageStatus.BLOCKED
        return MessageStatus.COMPLETED
