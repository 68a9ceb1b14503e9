"""Sending a message and getting the model's answer, whole or streamed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from application.chat_settings import SettingsDefaults, settings_of
from application.errors import (
    ContentFiltered,
    EmptyReply,
    ModelFailure,
    ProviderError,
    ProviderUnavailable,
)
from application.ports import (
    CONTENT_FILTER,
    ChatModel,
    ChatRequest,
    ChatRole,
    ChatTurn,
    Clock,
    ImageInspector,
    ModelCatalog,
    ModelInfo,
    TokenUsage,
    UnitOfWork,
)
from domain.chat_settings import UserChatSettings
from domain.conversation import Conversation, Message, MessageRole, MessageStatus
from domain.errors import InvalidInput, NotFound
from domain.history import fit_history
from domain.quota import QuotaPolicy

_T = TypeVar("_T")

_CHAT_ROLES: dict[MessageRole, ChatRole] = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.SYSTEM: "system",
}


@dataclass(frozen=True, kw_only=True)
class HistoryBudget:
    """How much of the conversation the model sees: at most ``max_messages`` of the
    newest messages, trimmed further to ``max_chars`` characters (newest kept)."""

    max_messages: int = 50
    max_chars: int = 16_000
    system_prompt: str = ""


TITLE_FROM_MESSAGE_CHARS = 50


@dataclass(frozen=True, kw_only=True)
class UserMessage:
    """``conversation_id`` None starts a new conversation, titled from the message."""

    owner_id: int
    conversation_id: int | None
    text: str
    model: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Exchange:
    conversation: Conversation
    user_message: Message
    ai_message: Message


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    conversation: Conversation
    user_message: Message
    request: ChatRequest


class _Turns:
    """What sending and streaming share: the rules checked before anything is stored,
    storing the user's message, building the model request, and storing the reply."""

    def __init__(
        self,
        uow: UnitOfWork,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        clock: Clock,
        budget: HistoryBudget,
        defaults: SettingsDefaults,
        images: ImageInspector,
    ) -> None:
        self.uow = uow
        self.catalog = catalog
        self.policy = policy
        self.clock = clock
        self.budget = budget
        self.defaults = defaults
        self.images = images

    async def prepare(self, command: UserMessage, *, store_now: bool = True) -> _Prepared:
        """Check the rules and build the model's request. The user's message is committed
        here unless ``store_now`` is False (and the conversation exists already): then
        it stays unsaved (``id`` None) and ``store_user_message`` or ``store`` writes
        it, so that a stream's first token need not wait for a database write."""
        self.policy.check_message(command.text)
        if command.model is not None and self.catalog.get(command.model) is None:
            raise InvalidInput({"model": [f'"{command.model}" is not an available model.']})
        # Fetched once, now: a later turn never depends on the URL still answering.
        image = await self.images.fetch(command.image_url) if command.image_url else None
        async with self.uow as uow:
            conversation, stored_settings = await self._conversation(uow, command)
            assert conversation.id is not None
            user_settings = stored_settings or await settings_of(
                uow, command.owner_id, self.catalog, self.defaults
            )
            model_id = command.model or conversation.model or user_settings.settings.ai_model
            model = self.catalog.get(model_id)
            if model is None:
                raise ProviderUnavailable(
                    f'The model "{model_id}" is not available now; choose another in your '
                    "chat settings."
                )
            if image is not None and not model.takes_image(image.mime_type):
                raise InvalidInput({"image_url": [_refused_image(model, image.mime_type)]})
            earlier = await uow.messages.latest(conversation.id, self.budget.max_messages - 1)
            user_message = Message(
                id=None,
                conversation_id=conversation.id,
                role=MessageRole.USER,
                content=command.text,
                created_at=self.clock.now(),
                image_url=command.image_url,
                image_data=None
                if image is None or image.data_uri == command.image_url
                else (image.data_uri),
            )
            if store_now or command.conversation_id is None:
                await uow.messages.add(user_message)
                # updated_at moves when the reply is stored, one write per exchange.
                await uow.commit()
        history = fit_history([*earlier, user_message], self.budget.max_chars)
        turns = [ChatTurn(role="system", content=self.budget.system_prompt)] * bool(
            self.budget.system_prompt
        )
        turns += [
            ChatTurn(
                role=_CHAT_ROLES[m.role],
                content=m.content,
                image_url=m.image_for_model if model.supports_images else None,
            )
            for m in history
        ]
        request = ChatRequest(
            model=model_id,
            messages=turns,
            temperature=user_settings.settings.temperature,
            max_tokens=user_settings.settings.max_tokens,
        )
        return _Prepared(conversation=conversation, user_message=user_message, request=request)

    async def _conversation(
        self, uow: UnitOfWork, command: UserMessage
    ) -> tuple[Conversation, UserChatSettings | None]:
        if command.conversation_id is None:
            # Started in the same transaction as the message it is for: a message that is
            # refused leaves no empty conversation behind.
            active = await uow.conversations.count_active_locked(command.owner_id)
            started = await uow.conversations.add(
                Conversation.start(
                    owner_id=command.owner_id,
                    now=self.clock.now(),
                    active_conversations=active,
                    policy=self.policy,
                    title=_title_from(command.text),
                    model=command.model,
                )
            )
            return started, None
        found = await uow.conversations.owned_with_settings(
            command.conversation_id, command.owner_id
        )
        if found is None:
            raise NotFound("Conversation not found.")
        found[0].ensure_accepts_messages()
        return found

    def reply(
        self,
        prepared: _Prepared,
        *,
        text: str,
        started: float,
        status: MessageStatus = MessageStatus.COMPLETED,
        model: str | None = None,
        provider: str | None = None,
        usage: TokenUsage | None = None,
        finish_reason: str | None = None,
        failure: ModelFailure | None = None,
        reasoning: str = "",
    ) -> Message:
        usage = usage or TokenUsage()
        return Message(
            id=None,
            conversation_id=prepared.user_message.conversation_id,
            role=MessageRole.ASSISTANT,
            content=text,
            created_at=self.clock.now(),
            status=status,
            model=model or prepared.request.model,
            provider=provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            finish_reason=finish_reason,
            latency_ms=round((time.perf_counter() - started) * 1000),
            error_code=None if failure is None else failure.code,
            error_message=None if failure is None else failure.message[:500],
            reasoning=reasoning or None,
            reasoning_tokens=usage.reasoning_tokens,
        )

    async def store_user_message(self, prepared: _Prepared) -> None:
        if prepared.user_message.id is not None:
            return
        try:
            async with self.uow as uow:
                await uow.messages.add(prepared.user_message)
                await uow.commit()
        except BaseException:
            prepared.user_message.id = None  # not stored: store() will try again
            raise

    async def store(self, prepared: _Prepared, reply: Message) -> Message:
        """Store the reply -- with the user's message first if that is not stored yet."""
        async with self.uow as uow:
            if prepared.user_message.id is None:
                await uow.messages.add(prepared.user_message)
            stored = await uow.messages.add(reply)
            prepared.conversation.touch(reply.created_at)
            await uow.conversations.touch(reply.conversation_id, reply.created_at)
            await uow.commit()
        return stored


def _refused_image(model: ModelInfo, mime_type: str) -> str:
    if not model.supports_images:
        return f'The model "{model.id}" does not take images.'
    takes = ", ".join(sorted(kind.removeprefix("image/").upper() for kind in model.image_types))
    return (
        f'The model "{model.id}" does not take {mime_type.removeprefix("image/").upper()} '
        f"images; send one of: {takes}."
    )


def unusable_answer(text: str, finish_reason: str | None) -> ModelFailure | None:
    """Why a finished answer is no answer: the provider's safety system withheld it, or
    the model wrote nothing (e.g. a thinking model that spent its whole token budget
    thinking). Either is reported as what it is, never as an empty success."""
    if finish_reason == CONTENT_FILTER:
        return ContentFiltered()
    if not text.strip():
        return EmptyReply(
            f"The model finished ({finish_reason or 'stop'}) without writing any text; "
            "a larger max_tokens may help."
        )
    return None


def _status_for(failure: ModelFailure, text: str) -> MessageStatus:
    if isinstance(failure, ContentFiltered):
        return MessageStatus.BLOCKED
    return MessageStatus.PARTIAL if text.strip() else MessageStatus.FAILED


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    if len(line) <= TITLE_FROM_MESSAGE_CHARS:
        return line
    return line[: TITLE_FROM_MESSAGE_CHARS - 1].rstrip() + "…"


class SendMessage:
    """Send a message in one of the user's conversations and store the model's answer.

    Rules: the message is 1..max_message_chars characters (400 otherwise, nothing
    stored); a closed conversation takes no messages (409); the model is the one named
    for this turn, else the conversation's, else the user's chat setting, and must be
    available; an image needs a model that takes images and a public http(s) URL or a
    data: URI. The user's message is committed before the model is called, so a
    provider failure never loses it: the failure is stored as a failed reply and
    reported as 502/503/504. The model sees the conversation's newest messages within
    the history budget and the user's temperature and max_tokens."""

    def __init__(
        self,
        uow: UnitOfWork,
        model: ChatModel,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        clock: Clock,
        budget: HistoryBudget,
        defaults: SettingsDefaults,
        images: ImageInspector,
    ) -> None:
        self._model = model
        self._turns = _Turns(uow, catalog, policy, clock, budget, defaults, images)

    async def __call__(self, command: UserMessage) -> Exchange:
        prepared = await self._turns.prepare(command)
        started = time.perf_counter()
        try:
            completion = await self._model.complete(prepared.request)
        except ModelFailure as failure:
            await self._turns.store(
                prepared,
                self._turns.reply(
                    prepared,
                    text="",
                    started=started,
                    status=MessageStatus.FAILED,
                    failure=failure,
                ),
            )
            raise
        unusable = unusable_answer(completion.text, completion.finish_reason)
        reply = await self._turns.store(
            prepared,
            self._turns.reply(
                prepared,
                text=completion.text,
                started=started,
                status=(
                    MessageStatus.COMPLETED
                    if unusable is None
                    else _status_for(unusable, completion.text)
                ),
                model=completion.model,
                provider=completion.provider,
                usage=completion.usage,  # billed, answer or not
                finish_reason=completion.finish_reason,
                failure=unusable,
                reasoning=completion.reasoning,
            ),
        )
        if unusable is not None:
            raise unusable
        return Exchange(
            conversation=prepared.conversation,
            user_message=prepared.user_message,
            ai_message=reply,
        )


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ReplyEnded:
    """The last event: the stored reply, and the failure if the model did not finish."""

    ai_message: Message
    failure: ModelFailure | None = None


StreamEvent = TextChunk | ReplyEnded


@dataclass(frozen=True)
class ReplyStream:
    conversation: Conversation
    user_message: Message
    events: AsyncIterator[StreamEvent]
    # Run after the response, whatever happened to it: stores a reply if the stream never
    # did (the client left before it started).
    settle: Callable[[], Awaitable[None]]


class ClientDisconnected(ModelFailure):
    code = "client_disconnected"
    default_message = "The client left before the answer was complete."


_finishing: set[asyncio.Task[Any]] = set()


def _unstoppable(work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
    # A client that disconnects cancels the task streaming to it; what must still be
    # written runs as its own task, which cancellation of that one cannot reach.
    task = asyncio.ensure_future(work)
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)
    return task


class _ReplyOnce:
    """Writes a streamed turn's reply exactly once, whatever ends the stream."""

    def __init__(self, turns: _Turns, prepared: _Prepared) -> None:
        self._turns = turns
        self._prepared = prepared
        self._storing_user_message: asyncio.Task[None] | None = None
        self.written = False

    def start_storing_user_message(self) -> None:
        if self._storing_user_message is None:
            self._storing_user_message = _unstoppable(
                self._turns.store_user_message(self._prepared)
            )

    async def write(self, **reply: Any) -> Message:
        self.written = True  # before awaiting: settle() must not write a second one
        message = self._turns.reply(self._prepared, **reply)

        async def after_the_user_message() -> Message:
            if self._storing_user_message is not None:
                # If that write failed, the message is still unsaved and store() adds it.
                await asyncio.gather(self._storing_user_message, return_exceptions=True)
            return await self._turns.store(self._prepared, message)

        return await asyncio.shield(_unstoppable(after_the_user_message()))

    async def settle(self) -> None:
        if not self.written:
            await self.write(
                text="",
                started=time.perf_counter(),
                status=MessageStatus.FAILED,
                failure=ClientDisconnected(),
            )


class StreamMessage:
    """Send a message and stream the model's answer as it is produced.

    The same rules as SendMessage are checked before the stream starts (so those errors
    are ordinary HTTP errors). Text is forwarded as it arrives. The user's message is
    written once the first text has gone out, beside the stream -- nothing slow comes
    before the first token, and no token waits for the database -- or, if the stream
    ends before any text, together with the reply, after it in any case (a
    new conversation and its first message are written before the stream, in one
    transaction, as the active-conversation limit requires). The reply is stored when
    the stream ends: complete; partial (with the error) if the provider drops
    mid-answer; partial if the client goes away."""

    def __init__(
        self,
        uow: UnitOfWork,
        model: ChatModel,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        clock: Clock,
        budget: HistoryBudget,
        defaults: SettingsDefaults,
        images: ImageInspector,
    ) -> None:
        self._model = model
        self._turns = _Turns(uow, catalog, policy, clock, budget, defaults, images)

    async def __call__(self, command: UserMessage) -> ReplyStream:
        prepared = await self._turns.prepare(command, store_now=False)
        reply = _ReplyOnce(self._turns, prepared)
        return ReplyStream(
            conversation=prepared.conversation,
            user_message=prepared.user_message,
            events=self._events(prepared, reply),
            settle=reply.settle,
        )

    async def _events(self, prepared: _Prepared, reply: _ReplyOnce) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        parts: list[str] = []
        thoughts: list[str] = []
        usage: TokenUsage | None = None
        finish: str | None = None
        model = provider = None
        try:
            async for delta in self._model.stream(prepared.request):
                if delta.text:
                    parts.append(delta.text)
                    yield TextChunk(delta.text)
                    if len(parts) == 1:
                        # The first text is out: the user's message is written now,
                        # beside the stream (which never waits on the database).
                        reply.start_storing_user_message()
                if delta.reasoning:
                    thoughts.append(delta.reasoning)
                usage = delta.usage or usage
                finish = delta.finish_reason or finish
                model = delta.model or model
                provider = delta.provider or provider
        except ModelFailure as failure:
            text = "".join(parts)
            stored = await reply.write(
                text=text,
                started=started,
                status=_status_for(failure, text),
                failure=failure,
                reasoning="".join(thoughts),
            )
            yield ReplyEnded(stored, failure)
            return
        except (asyncio.CancelledError, GeneratorExit):
            await reply.write(
                text="".join(parts),
                started=started,
                status=MessageStatus.PARTIAL,
                failure=ClientDisconnected(),
                reasoning="".join(thoughts),
            )
            raise
        text = "".join(parts)
        unfinished = (
            ProviderError("The model's stream ended without finishing.")
            if finish is None
            else unusable_answer(text, finish)
        )
        stored = await reply.write(
            text=text,
            started=started,
            status=MessageStatus.COMPLETED if unfinished is None else _status_for(unfinished, text),
            model=model,
            provider=provider,
            usage=usage,
            finish_reason=finish,
            failure=unfinished,
            reasoning="".join(thoughts),
        )
        yield ReplyEnded(stored, unfinished)
