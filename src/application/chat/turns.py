"""One chat turn, as sending and streaming share it: its command, what is prepared before
the model is called, the request the model gets, and how an answer is judged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from application.budgets import Reservation
from application.errors import ContentFiltered, EmptyReply, ModelFailure
from application.ports import (
    CONTENT_FILTER,
    AccessClaims,
    ChatRequest,
    ChatRole,
    ChatTurn,
    ModelInfo,
    TokenUsage,
)
from domain.branches import Rewrite
from domain.chat_settings import ChatSettings
from domain.conversation import (
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    NewMessage,
)
from domain.history import HistoryMessage

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


@dataclass(frozen=True, kw_only=True)
class Sampling:
    """What the caller asked of the model's sampling; None: the user's chat settings."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SendMessageRequest:
    """``conversation_id`` None starts a new conversation, titled from the message."""

    owner_id: int
    conversation_id: int | None
    text: str
    model: str | None = None
    image_url: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    # A turn on an earlier message (then ``conversation_id`` is that message's; the text
    # of a regenerated reply's question is the stored one).
    rewrite: Rewrite | None = None
    # A signed access token whose user row is still to be read: the turn reads it in its
    # first transaction (401 if the user is gone, inactive or signed out, before anything
    # is stored), so authenticating costs the turn no transaction of its own.
    unconfirmed_caller: AccessClaims | None = None


@dataclass(kw_only=True)
class PreparedTurn:
    conversation: Conversation
    user_message: NewMessage
    request: ChatRequest
    stored_user_message: Message | None  # None until it is written
    reservation: Reservation | None = None  # what the turn holds of the user's budget
    started_reply: Message | None = None  # a streamed turn's reply, stored ``streaming``


@dataclass(frozen=True, kw_only=True)
class StoredTurn:
    user_message: Message
    reply: Message


def streaming_reply(question: Message, model: str, now: datetime) -> NewMessage:
    """The reply a streamed turn stores before its first token: empty, ``streaming``."""
    return NewMessage(
        conversation_id=question.conversation_id,
        role=MessageRole.ASSISTANT,
        content="",
        created_at=now,
        status=MessageStatus.STREAMING,
        model=model,
        parent_id=question.id,
    )


def model_request(
    model: ModelInfo, settings: ChatSettings, history: Sequence[HistoryMessage], system_prompt: str
) -> ChatRequest:
    """What the model is sent: the system prompt, then the history it may see (images
    only to a model that takes them), with the user's sampling settings."""
    turns = [ChatTurn(role="system", content=system_prompt)] if system_prompt else []
    turns += [
        ChatTurn(
            role=_CHAT_ROLES[message.role],
            content=message.content,
            image_url=message.image_for_model if model.supports_images else None,
        )
        for message in history
    ]
    return ChatRequest(
        model=model.id,
        messages=turns,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
    )


def with_sampling(
    request: ChatRequest, sampling: Sampling, *, permitted_models: frozenset[str] | None = None
) -> ChatRequest:
    """The request with what the caller asked for in place of the settings' values, to
    be answered by the models the caller may use."""
    return replace(
        request,
        permitted_models=permitted_models,
        temperature=request.temperature if sampling.temperature is None else sampling.temperature,
        max_tokens=request.max_tokens if sampling.max_tokens is None else sampling.max_tokens,
        top_p=sampling.top_p,
        stop=sampling.stop,
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


def status_after(failure: ModelFailure, text: str) -> MessageStatus:
    if isinstance(failure, ContentFiltered):
        return MessageStatus.BLOCKED
    return MessageStatus.PARTIAL if text.strip() else MessageStatus.FAILED


@dataclass(frozen=True, kw_only=True)
class ReplyDraft:
    """What is known of the model's reply when it ends, however it ends."""

    text: str
    started: float  # time.perf_counter() when the model was asked
    status: MessageStatus = MessageStatus.COMPLETED
    model: str | None = None
    provider: str | None = None
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    failure: ModelFailure | None = None
    reasoning: str = ""
