"""Import of ChatGPT's ``conversations.json`` (its data export): what a reader sees of
each conversation is kept, with every branch, and the rest (tools, reasoning, code,
hidden messages) is left out."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.conversation import TITLE_MAX_CHARS, MessageRole
from domain.transfer.checks import (
    NOT_LIST,
    NOT_OBJECT,
    NOT_TEXT,
    REQUIRED,
    Problems,
    branch_flags,
    each_conversation,
    field_path,
    reindexed,
    tree_order,
)
from domain.transfer.imported import ImportedConversation, ImportedMessage, placed

_KEPT_ROLES = {
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
    "system": MessageRole.SYSTEM,
}
_TEXT_TYPES = frozenset({"text", "multimodal_text"})


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _fitted_title(title: str) -> str:
    line = " ".join(title.replace("\x00", "").split())
    if len(line) <= TITLE_MAX_CHARS:
        return line
    return line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def parse_chatgpt(document: list[Any]) -> list[ImportedConversation]:
    """ChatGPT's export: an array of conversations whose ``mapping`` holds nodes linked
    by ``parent``. Kept: user, assistant and (visible) system messages whose content is
    text (``text``, or the string parts of ``multimodal_text``; images and other parts
    are left out). Left out: the root (a node without a message), messages hidden from
    the conversation (``metadata.is_visually_hidden_from_conversation``), tool messages
    and calls to tools (``recipient`` other than ``all``), reasoning (``thoughts``,
    ``reasoning_recap``), code and its output, and empty messages; a kept message's
    parent is its nearest kept ancestor. Every branch is kept; the path to
    ``current_node`` is the current branch. A title longer than ``TITLE_MAX_CHARS`` is
    cut to fit (ChatGPT made it); NUL characters, which cannot be stored, are dropped."""
    problems = Problems()
    return each_conversation(document, "", _chatgpt_conversation, problems)


@dataclass(frozen=True)
class _Node:
    key: str
    parent: str | None
    message: ImportedMessage | None
    sort_key: float


def _chatgpt_conversation(item: Any, path: str, problems: Problems) -> ImportedConversation | None:
    if not isinstance(item, dict):
        problems.add(path, NOT_OBJECT)
        return None
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        problems.add(field_path(path, "title"), NOT_TEXT)
    created = _epoch(item.get("create_time"))
    if item.get("create_time") is not None and created is None:
        problems.add(field_path(path, "create_time"), "Expected seconds since the epoch.")
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        problems.add(field_path(path, "mapping"), REQUIRED if mapping is None else NOT_OBJECT)
        return None
    current = item.get("current_node")
    if current is not None and (not isinstance(current, str) or current not in mapping):
        problems.add(field_path(path, "current_node"), "No node of the mapping has this id.")
        return None
    when = created or datetime.fromtimestamp(0, UTC)
    nodes = _chatgpt_nodes(mapping, path, when, problems)
    if nodes is None:
        return None
    messages = _chatgpt_tree(nodes, current, path, problems)
    if messages is None:
        return None
    start = created or (messages[0].created_at if messages else when)
    updated = _epoch(item.get("update_time")) or start
    return ImportedConversation(
        title=_fitted_title(title) if isinstance(title, str) else "",
        model=None,
        created_at=start,
        updated_at=updated,
        archived_at=updated if item.get("is_archived") is True else None,
        pinned_at=None,
        messages=messages,
    )


def _chatgpt_nodes(
    mapping: dict[str, Any], path: str, when: datetime, problems: Problems
) -> list[_Node] | None:
    nodes: list[_Node] = []
    for key, node in mapping.items():
        npath = f"{path}.mapping.{key}"
        if not isinstance(node, dict):
            problems.add(npath, NOT_OBJECT)
            continue
        parent = node.get("parent")
        if parent is not None and not isinstance(parent, str):
            problems.add(field_path(npath, "parent"), NOT_TEXT)
            continue
        message = _chatgpt_message(
            node.get("message"), field_path(npath, "message"), when, problems
        )
        sort_key = (message.created_at if message is not None else when).timestamp()
        nodes.append(_Node(str(key), parent, message, sort_key))
    return nodes if len(nodes) == len(mapping) else None


def _chatgpt_tree(
    nodes: list[_Node], current: str | None, path: str, problems: Problems
) -> tuple[ImportedMessage, ...] | None:
    """The kept messages in storage order, each under its nearest kept ancestor, the
    path to ``current`` (or the newest) marked as the current branch."""
    tree = tree_order(
        [n.key for n in nodes],
        [n.parent for n in nodes],
        [n.sort_key for n in nodes],
        id_paths=[f"{path}.mapping.{n.key}.id" for n in nodes],
        parent_paths=[f"{path}.mapping.{n.key}.parent" for n in nodes],
        problems=problems,
    )
    if tree is None:
        return None
    node_order, parents = tree
    # Each node's nearest kept ancestor-or-self, parents resolved before children.
    kept_at: list[int | None] = [None] * len(nodes)
    for i in node_order:
        parent = parents[i]
        inherited = None if parent is None else kept_at[parent]
        kept_at[i] = i if nodes[i].message is not None else inherited
    kept = [i for i in range(len(nodes)) if nodes[i].message is not None]
    kept_parent_keys: list[Hashable | None] = [
        None if parents[i] is None else kept_at[parents[i]]  # type: ignore[index]
        for i in kept
    ]
    kept_tree = tree_order(
        kept,
        kept_parent_keys,
        [nodes[i].sort_key for i in kept],
        id_paths=[""] * len(kept),
        parent_paths=[""] * len(kept),
        problems=problems,
    )
    assert kept_tree is not None  # what a valid tree's kept nodes form is one
    order, kept_parents = kept_tree
    leaf: int | None = order[-1] if order else None
    if current is not None:
        current_kept = kept_at[next(i for i, n in enumerate(nodes) if n.key == current)]
        leaf = None if current_kept is None else kept.index(current_kept)
    flags = branch_flags(kept_parents, leaf)
    _, stored_parents = reindexed(order, kept_parents)
    messages = []
    for at, original in enumerate(order):
        message = nodes[kept[original]].message
        assert message is not None
        messages.append(placed(message, parent=stored_parents[at], on_branch=flags[original]))
    return tuple(messages)


def _chatgpt_message(
    raw: Any, path: str, fallback_time: datetime, problems: Problems
) -> ImportedMessage | None:
    """The message to keep, or None for one left out (see ``parse_chatgpt``)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(path, NOT_OBJECT)
        return None
    author = raw.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    if not isinstance(role, str):
        problems.add(field_path(path, "author.role"), NOT_TEXT)
        return None
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if role not in _KEPT_ROLES or metadata.get("is_visually_hidden_from_conversation") is True:
        return None
    if raw.get("recipient", "all") != "all":
        return None
    content = raw.get("content")
    if not isinstance(content, dict):
        problems.add(field_path(path, "content"), NOT_OBJECT)
        return None
    if content.get("content_type") not in _TEXT_TYPES:
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        problems.add(field_path(path, "content.parts"), NOT_LIST)
        return None
    text = "\n".join(part for part in parts if isinstance(part, str)).replace("\x00", "")
    if not text.strip():
        return None
    created = _epoch(raw.get("create_time")) or fallback_time
    model = metadata.get("model_slug")
    finish = metadata.get("finish_details")
    finish_reason = finish.get("type") if isinstance(finish, dict) else None
    return ImportedMessage(
        parent=None,
        role=_KEPT_ROLES[role],
        content=text,
        created_at=created,
        model=model if isinstance(model, str) and role == "assistant" else None,
        provider="openai" if role == "assistant" else None,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
    )
