"""Export: Parley's own JSON format (every message of every branch, with ids and
parents, so an import restores the tree) and the Markdown of each current branch (to
read). Pure: rendering takes domain objects and gives text, in pieces an export streams
as it reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.conversation import Conversation, Message, MessageRole, MessageStatus

FORMAT_NAME = "parley-conversations"
FORMAT_VERSION = 1


class ExportFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"


# -- export: Parley JSON ---------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def conversation_record(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "status": conversation.status.value,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "archived_at": _iso(conversation.archived_at),
        "pinned_at": _iso(conversation.pinned_at),
    }


def message_record(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role.value,
        "content": message.content,
        "status": message.status.value,
        "model": message.model,
        "provider": message.provider,
        "created_at": _iso(message.created_at),
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "reasoning_tokens": message.reasoning_tokens,
        "reasoning": message.reasoning,
        "finish_reason": message.finish_reason,
        "error_code": message.error_code,
        "image_url": message.image_url,
        "on_current_branch": message.on_branch,
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_document_start(exported_at: datetime) -> str:
    head = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": _iso(exported_at)}
    return _json(head)[:-1] + ',"conversations":['


def json_conversation_start(conversation: Conversation, *, first: bool) -> str:
    return ("" if first else ",") + _json(conversation_record(conversation))[:-1] + ',"messages":['


def json_message(message: Message, *, first: bool) -> str:
    return ("" if first else ",") + _json(message_record(message))


JSON_CONVERSATION_END = "]}"
JSON_DOCUMENT_END = "]}\n"


# -- export: Markdown of the current branch ----------------------------------------------


def _shown_time(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def markdown_conversation_start(conversation: Conversation, *, first: bool) -> str:
    title = " ".join(conversation.title.split()) or "Untitled conversation"
    details = [f"conversation {conversation.id}", f"started {_shown_time(conversation.created_at)}"]
    if conversation.model:
        details.append(f"model {conversation.model}")
    details.append(conversation.status.value)
    return ("" if first else "\n---\n\n") + f"# {title}\n\n_{' · '.join(details)}_\n\n"


_SPEAKERS = {
    MessageRole.USER: "User",
    MessageRole.ASSISTANT: "Assistant",
    MessageRole.SYSTEM: "System",
}


def markdown_message(message: Message) -> str:
    heading = _SPEAKERS[message.role]
    if message.model and message.role is MessageRole.ASSISTANT:
        heading += f" ({message.model})"
    text = f"## {heading} · {_shown_time(message.created_at)}\n\n"
    if message.image_url and not message.image_url.startswith("data:"):
        text += f"![image]({message.image_url})\n\n"
    if message.content:
        text += message.content.rstrip("\n") + "\n\n"
    if message.status not in (MessageStatus.COMPLETED, MessageStatus.STREAMING):
        note = message.status.value + (f": {message.error_code}" if message.error_code else "")
        text += f"_({note})_\n\n"
    return text
