"""How a model call is reported: its outcome, tokens and the request's log facts.

The thing under test is ObservedChatModel; the model behind it is a scripted stand-in and
the metrics a recorder of what it was told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from adapters.llm.catalog import StaticModelCatalog
from adapters.telemetry.chat_model import ObservedChatModel
from adapters.telemetry.request_context import begin_request, end_request
from application.errors import ProviderError
from application.ports import (
    CONTENT_FILTER,
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    ChatTurn,
    ModelInfo,
    TokenUsage,
)
from domain.budgets import Price

MODEL = ModelInfo(
    id="m1",
    name="M1",
    provider="Acme",
    price=Price(input_per_million=Decimal(1), output_per_million=Decimal(2)),
)
REQUEST = ChatRequest(
    model="m1", messages=[ChatTurn(role="user", content="hi")], temperature=0.5, max_tokens=10
)
USAGE = TokenUsage(prompt_tokens=3, completion_tokens=5)


@dataclass
class Recorded:
    ended: list[tuple[str, str, str, TokenUsage | None]] = field(default_factory=list)
    first_tokens: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0

    def stream_started(self) -> None:
        self.in_flight += 1

    def stream_ended(self) -> None:
        self.in_flight -= 1

    def first_token(self, provider: str, model: str, seconds: float) -> None:
        assert seconds >= 0
        self.first_tokens.append((provider, model))

    def call_ended(
        self, provider: str, model: str, outcome: str, usage: TokenUsage | None, seconds: float
    ) -> None:
        assert seconds >= 0
        self.ended.append((provider, model, outcome, usage))


class Scripted:
    def __init__(
        self, deltas: Sequence[ChatDelta] = (), *, fail_after: bool = False, finish: str = "stop"
    ) -> None:
        self._deltas = deltas
        self._fail_after = fail_after
        self._finish = finish

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        if self._fail_after:
            raise ProviderError()
        return ChatCompletion(
            text="ok", model="m1", provider="Acme", usage=USAGE, finish_reason=self._finish
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        for delta in self._deltas:
            yield delta
        if self._fail_after:
            raise ProviderError()


def observed(model: Scripted) -> tuple[ObservedChatModel, Recorded]:
    recorded = Recorded()
    catalog = StaticModelCatalog([MODEL], "m1")
    return ObservedChatModel(model, catalog, recorded), recorded


PIECE = ChatDelta(text="Hel", model="m1", provider="Acme")
LAST = ChatDelta(text="lo", usage=USAGE, finish_reason="stop", model="m1", provider="Acme")


async def read(model: ObservedChatModel, pieces: int | None = None) -> list[ChatDelta]:
    received = []
    stream = model.stream(REQUEST)
    async for delta in stream:
        received.append(delta)
        if pieces is not None and len(received) == pieces:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return received


async def test_an_answered_call_is_completed_with_its_tokens() -> None:
    model, recorded = observed(Scripted())
    await model.complete(REQUEST)
    assert recorded.ended == [("Acme", "m1", "completed", USAGE)]


async def test_a_filtered_answer_is_blocked() -> None:
    model, recorded = observed(Scripted(finish=CONTENT_FILTER))
    await model.complete(REQUEST)
    assert recorded.ended[0][2] == "blocked"


async def test_a_failed_call_is_failed_under_the_requested_models_provider() -> None:
    model, recorded = observed(Scripted(fail_after=True))
    with pytest.raises(ProviderError):
        await model.complete(REQUEST)
    assert recorded.ended == [("Acme", "m1", "failed", None)]


async def test_a_stream_read_to_its_end_is_completed_and_times_its_first_token() -> None:
    model, recorded = observed(Scripted([PIECE, LAST]))
    assert [d.text for d in await read(model)] == ["Hel", "lo"]
    assert recorded.ended == [("Acme", "m1", "completed", USAGE)]
    assert recorded.first_tokens == [("Acme", "m1")]
    assert recorded.in_flight == 0


async def test_a_reader_that_stops_at_the_last_piece_has_it_all() -> None:
    model, recorded = observed(Scripted([PIECE, LAST]))
    await read(model, pieces=2)
    assert recorded.ended[0][2] == "completed"


async def test_a_reader_that_leaves_early_cancelled_the_call() -> None:
    model, recorded = observed(Scripted([PIECE, LAST]))
    await read(model, pieces=1)
    assert recorded.ended[0][2] == "cancelled"
    assert recorded.in_flight == 0


async def test_a_stream_that_fails_after_text_is_partial_and_before_it_failed() -> None:
    model, recorded = observed(Scripted([PIECE], fail_after=True))
    with pytest.raises(ProviderError):
        await read(model)
    model_without_text, recorded_without = observed(Scripted([], fail_after=True))
    with pytest.raises(ProviderError):
        await read(model_without_text)
    assert recorded.ended[0][2] == "partial"
    assert recorded_without.ended[0][2] == "failed"
    assert recorded.in_flight == recorded_without.in_flight == 0


async def test_a_stream_that_stops_without_a_reason_is_partial() -> None:
    model, recorded = observed(Scripted([PIECE]))
    await read(model)
    assert recorded.ended[0][2] == "partial"


async def test_the_request_log_line_learns_the_model_provider_and_tokens() -> None:
    facts, token = begin_request("r-1")
    try:
        model = ObservedChatModel(Scripted(), StaticModelCatalog([MODEL], "m1"), None)
        await model.complete(REQUEST)
    finally:
        end_request(token)
    assert (facts.model, facts.provider) == ("m1", "Acme")
    assert (facts.prompt_tokens, facts.completion_tokens) == (3, 5)


async def test_a_stream_written_by_a_task_of_the_request_reaches_its_log_line() -> None:
    facts, token = begin_request("r-2")
    try:
        model = ObservedChatModel(Scripted([PIECE, LAST]), StaticModelCatalog([MODEL], "m1"), None)
        await asyncio.create_task(read(model))
    finally:
        end_request(token)
    assert facts.completion_tokens == 5
