"""Chat completions no conversation keeps: OpenAI's Chat Completions as Parley serves it.

The caller sends the whole history, as to OpenAI; Parley adds its accounts, limits,
models, fallbacks and a usage record of every call (``ModelCall``), and keeps no text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from application.budgets import Metering
from application.chat.call_records import CallOutcome, CallRecorder, PreparedCall
from application.chat.turns import Sampling, with_sampling
from application.chat_settings import SettingsDefaults, settings_of
from application.errors import ModelFailure
from application.ports import (
    ChatCompletion,
    ChatDelta,
    ChatModel,
    ChatRequest,
    ChatTurn,
    ImageInspector,
    JsonObject,
    ModelCatalog,
    ModelInfo,
    ToolUse,
    UnitOfWork,
)
from domain.errors import InvalidInput, MessageTooLong, ModelNotFound
from domain.quota import QuotaPolicy


@dataclass(frozen=True, kw_only=True)
class CompletionRequest:
    """``messages`` as the caller sent them; an ``image_url`` may still be an http(s)
    URL (it is fetched once, here)."""

    owner_id: int
    model: str
    messages: Sequence[ChatTurn]
    sampling: Sampling = field(default_factory=Sampling)
    tools: ToolUse | None = None
    response_format: JsonObject | None = None


class CompletionPreparation:
    """The rules of a completion: the model is one the catalogue serves now (else 404
    ``model_not_found``) and the user may use (403 ``model_not_allowed``); tools, a
    response format and tool turns need a model that takes them; each image is fetched
    once and must be of a type the model takes; the newest user message is within the
    message-length quota. Sampling the caller did not give
    comes from the user's chat settings. The call's estimate must fit the user's budget
    (429 ``budget_exceeded``); it is reserved and committed before the model is called."""

    def __init__(
        self,
        uow: UnitOfWork,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        defaults: SettingsDefaults,
        images: ImageInspector,
        metering: Metering,
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._policy = policy
        self._defaults = defaults
        self._images = images
        self._metering = metering

    async def __call__(self, command: CompletionRequest) -> PreparedCall:
        model = self._catalog.get(command.model)
        if model is None:
            raise ModelNotFound(
                f"The model `{command.model}` does not exist or you do not have access to it."
            )
        _check_tools(model, command)
        _check_length(self._policy, command.messages)
        messages = await asyncio.gather(
            *(self._with_image(model, i, turn) for i, turn in enumerate(command.messages))
        )
        async with self._uow as uow:
            limits = await self._metering.limits(uow, command.owner_id)
            limits.access.require(model.id)
            settings = await settings_of(uow, command.owner_id, self._catalog, self._defaults)
            request = with_sampling(
                ChatRequest(
                    model=model.id,
                    messages=messages,
                    temperature=settings.settings.temperature,
                    max_tokens=settings.settings.max_tokens,
                    tools=command.tools,
                    response_format=command.response_format,
                ),
                command.sampling,
                permitted_models=limits.access.allowed,
            )
            reservation = await self._metering.reserve(
                uow, command.owner_id, limits.budget, request
            )
            try:
                await uow.commit()
            except BaseException:
                self._metering.settled(reservation)
                raise
        return PreparedCall(request=request, reservation=reservation)

    async def _with_image(self, model: ModelInfo, index: int, turn: ChatTurn) -> ChatTurn:
        if turn.image_url is None:
            return turn
        try:
            image = await self._images.fetch(turn.image_url)
        except InvalidInput as refused:  # said of "image_url": say where it is here
            messages = [m for texts in refused.field_errors.values() for m in texts]
            raise InvalidInput({f"messages[{index}].content": messages}) from None
        if not model.takes_image(image.mime_type):
            kind = image.mime_type.removeprefix("image/").upper()
            reason = "images" if not model.supports_images else f"{kind} images"
            raise InvalidInput(
                {f"messages[{index}].content": [f'The model "{model.id}" does not take {reason}.']}
            )
        return replace(turn, image_url=image.data_uri)


def _check_tools(model: ModelInfo, command: CompletionRequest) -> None:
    if model.supports_tools:
        return
    refused = {"tools": command.tools is not None, "response_format": bool(command.response_format)}
    refused["messages"] = any(t.tool_calls or t.role == "tool" for t in command.messages)
    errors = {
        field: [f'The model "{model.id}" does not take {field.replace("_", " ")}.']
        for field, given in refused.items()
        if given
    }
    if errors:
        raise InvalidInput(errors)


def _check_length(policy: QuotaPolicy, messages: Sequence[ChatTurn]) -> None:
    newest = next((turn for turn in reversed(messages) if turn.role == "user"), None)
    if newest is not None and len(newest.content) > policy.max_message_chars:
        raise MessageTooLong(policy.max_message_chars)


class CompleteChat:
    """Answer a completion no conversation keeps (``CompletionPreparation``'s rules hold,
    nothing is recorded before they do). The provider's answer is returned as it is --
    an empty or filtered answer included, as OpenAI's API returns it -- and a usage
    record is written however the call ends; a provider failure is raised after it."""

    def __init__(
        self, prepare: CompletionPreparation, record: CallRecorder, model: ChatModel
    ) -> None:
        self._prepare = prepare
        self._record = record
        self._model = model

    async def __call__(self, command: CompletionRequest) -> ChatCompletion:
        call = await self._prepare(command)
        outcome = CallOutcome(started=time.perf_counter())
        try:
            completion = await self._model.complete(call.request)
        except ModelFailure as failure:
            outcome.failure = failure
            await self._record.record(command.owner_id, call, outcome)
            raise
        except BaseException:  # the caller left: the record says so, and settles
            await self._record.record(command.owner_id, call, outcome)
            raise
        outcome.text, outcome.usage = completion.text, completion.usage
        outcome.model, outcome.provider = completion.model, completion.provider
        outcome.finish_reason = completion.finish_reason
        await self._record.record(command.owner_id, call, outcome)
        return completion


class StreamChat:
    """``CompleteChat``, streamed. The first delta is awaited before this returns, so a
    call that fails before any token fails as a whole; a failure after it ends the
    stream with the error. A caller who leaves stops the provider's stream (as OpenAI's
    does) and the record keeps what was written by then."""

    def __init__(
        self, prepare: CompletionPreparation, record: CallRecorder, model: ChatModel
    ) -> None:
        self._prepare = prepare
        self._record = record
        self._model = model

    async def __call__(self, command: CompletionRequest) -> AsyncIterator[ChatDelta]:
        call = await self._prepare(command)
        outcome = CallOutcome(started=time.perf_counter())
        upstream = aiter(self._model.stream(call.request))
        try:
            first = await anext(upstream, None)
        except ModelFailure as failure:
            outcome.failure = failure
            await self._record.record(command.owner_id, call, outcome)
            raise
        except BaseException:
            await self._record.record(command.owner_id, call, outcome)
            raise
        return self._relay(command.owner_id, call, outcome, first, upstream)

    async def _relay(
        self,
        owner_id: int,
        call: PreparedCall,
        outcome: CallOutcome,
        first: ChatDelta | None,
        upstream: AsyncIterator[ChatDelta],
    ) -> AsyncIterator[ChatDelta]:
        delta = first
        try:
            while delta is not None:
                outcome.text += delta.text
                outcome.usage = delta.usage or outcome.usage
                outcome.finish_reason = delta.finish_reason or outcome.finish_reason
                outcome.model = delta.model or outcome.model
                outcome.provider = delta.provider or outcome.provider
                yield delta
                delta = await anext(upstream, None)
        except ModelFailure as failure:
            outcome.failure = failure
            raise
        finally:
            aclose = getattr(upstream, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._record.record(owner_id, call, outcome)
