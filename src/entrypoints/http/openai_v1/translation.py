"""OpenAI's request bodies to Parley's commands, and Parley's answers to OpenAI's bodies."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import msgspec

from application.chat import CompletionRequest, Sampling, SendMessageRequest
from application.ports import ChatCompletion, ChatRole, ChatTurn, TokenUsage, ToolCall, ToolUse
from domain.conversation import Message
from domain.errors import InvalidInput
from entrypoints.http.openai_v1.schemas import (
    AssistantMessage,
    AssistantMessageIn,
    ChatCompletionIn,
    ChatCompletionOut,
    Choice,
    CompletionTokensDetails,
    DeveloperMessage,
    FunctionCallOut,
    ImagePart,
    MessageIn,
    SystemMessage,
    TextPart,
    ToolCallOut,
    ToolMessage,
    Usage,
    UserMessage,
)

CONVERSATION_HEADER = "x-parley-conversation"

# What OpenAI's clients know; a finish reason another provider invented reads as "stop".
_FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls"}


def sampling_of(body: ChatCompletionIn) -> Sampling:
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return Sampling(
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop,
    )


def conversation_of(header: str | None, body: ChatCompletionIn) -> int | None:
    """The Parley conversation the call is bound to: the header, else
    ``metadata.conversation_id``; they must agree when both are given."""
    given = {
        source: value.strip()
        for source, value in (
            (CONVERSATION_HEADER, header),
            ("metadata.conversation_id", (body.metadata or {}).get("conversation_id")),
        )
        if value is not None
    }
    for source, value in given.items():
        if not value.isdigit() or len(value) > 18:
            raise InvalidInput({source: ["A conversation id is a positive integer."]})
    if len(set(given.values())) > 1:
        raise InvalidInput({"metadata.conversation_id": ["It differs from the header's."]})
    return int(next(iter(given.values()))) if given else None


def completion_request(owner_id: int, body: ChatCompletionIn) -> CompletionRequest:
    tools = None
    if body.tools:
        choice = body.tool_choice
        tools = ToolUse(
            tools=tuple(_builtins(tool) for tool in body.tools),
            choice=choice if isinstance(choice, str | None) else _builtins(choice),
        )
    elif body.tool_choice is not None:
        raise InvalidInput({"tool_choice": ["tool_choice is only allowed when tools are given."]})
    turns = [_turn(i, message) for i, message in enumerate(body.messages)]
    _check_tool_results(turns)
    return CompletionRequest(
        owner_id=owner_id,
        model=body.model,
        messages=turns,
        sampling=sampling_of(body),
        tools=tools,
        response_format=None if body.response_format is None else _builtins(body.response_format),
    )


def message_to_store(
    owner_id: int, conversation_id: int, body: ChatCompletionIn
) -> SendMessageRequest:
    """A bound call stores its last message, which must be the user's; the conversation
    Parley keeps is the history (the request's earlier messages are not used)."""
    unsupported = {"tools": body.tools, "response_format": body.response_format}
    errors = {
        name: ["Not taken with a Parley conversation: it keeps text turns only."]
        for name, given in unsupported.items()
        if given
    }
    if errors:
        raise InvalidInput(errors)
    last = len(body.messages) - 1
    turn = _turn(last, body.messages[last])
    if turn.role != "user":
        raise InvalidInput(
            {f"messages[{last}].role": ["With a conversation, the last message is the user's."]}
        )
    return SendMessageRequest(
        owner_id=owner_id,
        conversation_id=conversation_id,
        text=turn.content,
        model=body.model,
        image_url=turn.image_url,
        sampling=sampling_of(body),
    )


def _turn(index: int, message: MessageIn) -> ChatTurn:
    texts, images = _parts(message.content)
    where = f"messages[{index}].content"
    if len(images) > 1:
        raise InvalidInput({where: [ONE_IMAGE]})
    if any("\x00" in text for text in texts):
        # PostgreSQL cannot store NUL, and no provider needs one.
        raise InvalidInput({where: ["Null characters are not allowed."]})
    turn = ChatTurn(
        role=_ROLES[type(message)],
        content="\n".join(texts),
        image_url=images[0] if images else None,
    )
    if isinstance(message, AssistantMessageIn) and message.tool_calls:
        calls = tuple(
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls
        )
        return replace(turn, tool_calls=calls)
    if isinstance(message, ToolMessage):
        return replace(turn, tool_call_id=message.tool_call_id)
    return turn


def _check_tool_results(turns: list[ChatTurn]) -> None:
    """A tool message answers a call of the assistant message before it (or before the
    tool messages answering that one's other calls), as OpenAI's API requires."""
    calls: set[str] = set()
    for index, turn in enumerate(turns):
        if turn.role == "tool" and turn.tool_call_id not in calls:
            raise InvalidInput(
                {
                    f"messages[{index}].tool_call_id": [
                        "A tool message answers a tool call of the assistant message before it."
                    ]
                }
            )
        if turn.role != "tool":
            calls = {call.id for call in turn.tool_calls}


ONE_IMAGE = "One image per message: Parley keeps one image with each message."

_ROLES: dict[type[MessageIn], ChatRole] = {
    SystemMessage: "system",
    DeveloperMessage: "system",
    UserMessage: "user",
    AssistantMessageIn: "assistant",
    ToolMessage: "tool",
}


def _parts(content: str | Sequence[TextPart | ImagePart] | None) -> tuple[list[str], list[str]]:
    if content is None:
        return [], []
    if isinstance(content, str):
        return [content], []
    texts = [part.text for part in content if isinstance(part, TextPart)]
    images = [part.image_url.url for part in content if isinstance(part, ImagePart)]
    return texts, images


def _builtins(struct: Any) -> dict[str, Any]:
    built: dict[str, Any] = msgspec.to_builtins(struct)
    return built


def completion_id(reply_id: int | None = None) -> str:
    """A stored reply's completion is named after it; a stateless one at random."""
    return (
        f"chatcmpl-parley-{reply_id}"
        if reply_id is not None
        else f"chatcmpl-{secrets.token_hex(12)}"
    )


def finish_reason(reason: str | None) -> str:
    return reason if reason in _FINISH_REASONS else "stop"


def usage_out(usage: TokenUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens),
    )


def completion_out(completion: ChatCompletion) -> ChatCompletionOut:
    refused = completion.finish_reason == "refusal"
    message = AssistantMessage(
        content=None
        if refused or (completion.tool_calls and not completion.text)
        else completion.text,
        refusal=completion.text if refused else None,
    )
    if completion.tool_calls:
        message.tool_calls = [
            ToolCallOut(
                id=call.id, function=FunctionCallOut(name=call.name, arguments=call.arguments)
            )
            for call in completion.tool_calls
        ]
    return ChatCompletionOut(
        id=completion_id(),
        created=int(time.time()),
        model=completion.model,
        choices=[Choice(message=message, finish_reason=finish_reason(completion.finish_reason))],
        usage=usage_out(completion.usage),
    )


def stored_reply_out(reply: Message, requested_model: str) -> ChatCompletionOut:
    usage = reply_usage(reply)
    return ChatCompletionOut(
        id=completion_id(reply.id),
        created=int(reply.created_at.timestamp()),
        model=reply.model or requested_model,
        choices=[
            Choice(
                message=AssistantMessage(content=reply.content),
                finish_reason=finish_reason(reply.finish_reason),
            )
        ],
        usage=usage_out(usage),
    )


def reply_usage(reply: Message) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        reasoning_tokens=reply.reasoning_tokens,
    )
