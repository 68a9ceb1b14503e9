"""Import of Parley's own JSON format, as the export writes it (every branch): checked as
strictly as every Parley body, so a file that was edited by hand is refused with every
bad field named rather than half imported."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import Any

from domain.conversation import TITLE_MAX_CHARS, ConversationStatus, MessageRole, MessageStatus
from domain.transfer.checks import (
    NOT_LIST,
    NOT_OBJECT,
    REQUIRED,
    Fields,
    Problems,
    branch_flags,
    each_conversation,
    reindexed,
    tree_order,
)
from domain.transfer.export import FORMAT_NAME, FORMAT_VERSION
from domain.transfer.imported import ImportedConversation, ImportedMessage, placed

_DOCUMENT_FIELDS = frozenset({"format", "version", "exported_at", "conversations"})
_CONVERSATION_FIELDS = frozenset(
    {"id", "title", "model", "status", "created_at", "updated_at", "archived_at", "pinned_at"}
    | {"messages"}
)
_MESSAGE_FIELDS = frozenset(
    {"id", "parent_id", "role", "content", "status", "model", "provider", "created_at"}
    | {"prompt_tokens", "completion_tokens", "reasoning_tokens", "reasoning"}
    | {"finish_reason", "error_code", "image_url", "on_current_branch"}
)


def parse_parley(document: dict[str, Any]) -> list[ImportedConversation]:
    """Every field is checked (unknown ones too, as every Parley body is strict); a
    title is at most ``TITLE_MAX_CHARS`` (longer is refused, as Parley never wrote one);
    message text has no length limit (it is history, not something sent now). Parents
    name messages of the same conversation; the messages marked ``on_current_branch``
    must form one path from a first message (none marked: the path to the newest)."""
    problems = Problems()
    fields = Fields(document, "", problems, _DOCUMENT_FIELDS)
    if document.get("format") != FORMAT_NAME:
        problems.add("format", f'Must be "{FORMAT_NAME}".')
    if "version" not in document:
        problems.add("version", REQUIRED)
    elif document["version"] != FORMAT_VERSION or isinstance(document["version"], bool):
        problems.add("version", f"Only version {FORMAT_VERSION} can be imported.")
    fields.time("exported_at")
    raw = document.get("conversations")
    if "conversations" not in document:
        problems.add("conversations", REQUIRED)
    elif not isinstance(raw, list):
        problems.add("conversations", NOT_LIST)
    problems.raise_any()
    assert isinstance(raw, list)
    return each_conversation(raw, "conversations", _parley_conversation, problems)


def _parley_conversation(item: Any, path: str, problems: Problems) -> ImportedConversation | None:
    if not isinstance(item, dict):
        problems.add(path, NOT_OBJECT)
        return None
    fields = Fields(item, path, problems, _CONVERSATION_FIELDS)
    fields.key("id", required=False)
    title = fields.text("title", required=True, nullable=False, limit=TITLE_MAX_CHARS)
    model = fields.text("model")
    fields.choice("status", ConversationStatus, ConversationStatus.CLOSED)
    created_at = fields.time("created_at", required=True)
    updated_at = fields.time("updated_at")
    archived_at = fields.time("archived_at")
    pinned_at = fields.time("pinned_at")
    raw = item.get("messages")
    if "messages" not in item:
        problems.add(fields.at("messages"), REQUIRED)
        return None
    if not isinstance(raw, list):
        problems.add(fields.at("messages"), NOT_LIST)
        return None
    keys: list[Hashable] = []
    parent_keys: list[Hashable | None] = []
    marked: list[bool] = []
    read: list[ImportedMessage] = []
    for j, entry in enumerate(raw):
        mpath = f"{path}.messages[{j}]"
        if not isinstance(entry, dict):
            problems.add(mpath, NOT_OBJECT)
            continue
        m = Fields(entry, mpath, problems, _MESSAGE_FIELDS)
        keys.append(m.key("id", required=True))
        parent_keys.append(m.key("parent_id", required=False))
        marked.append(m.flag("on_current_branch"))
        role = m.choice("role", MessageRole, MessageRole.USER)
        if "role" not in entry:
            problems.add(m.at("role"), REQUIRED)
        status = m.choice("status", MessageStatus, MessageStatus.COMPLETED)
        read.append(
            ImportedMessage(
                parent=None,
                role=role,
                content=m.text("content", required=True, nullable=False) or "",
                created_at=m.time("created_at", required=True) or datetime.min.replace(tzinfo=UTC),
                # Nobody is writing a reply that was streaming when it was exported.
                status=MessageStatus.INTERRUPTED if status is MessageStatus.STREAMING else status,
                model=m.text("model"),
                provider=m.text("provider"),
                image_url=m.text("image_url"),
                prompt_tokens=m.count("prompt_tokens"),
                completion_tokens=m.count("completion_tokens"),
                reasoning_tokens=m.count("reasoning_tokens"),
                reasoning=m.text("reasoning"),
                finish_reason=m.text("finish_reason"),
                error_code=m.text("error_code"),
            )
        )
    if len(read) != len(raw) or title is None or created_at is None:
        return None
    paths = [f"{path}.messages[{j}]" for j in range(len(raw))]
    tree = tree_order(
        keys,
        parent_keys,
        [0.0] * len(keys),
        id_paths=[p + ".id" for p in paths],
        parent_paths=[p + ".parent_id" for p in paths],
        problems=problems,
    )
    if tree is None:
        return None
    order, parents = tree
    valid, leaf = _marked_leaf(parents, marked, [p + ".on_current_branch" for p in paths], problems)
    if not valid:
        return None
    if leaf is None and order:
        leaf = order[-1]
    flags = branch_flags(parents, leaf)
    _, stored_parents = reindexed(order, parents)
    messages = tuple(
        placed(read[original], parent=stored_parents[at], on_branch=flags[original])
        for at, original in enumerate(order)
    )
    return ImportedConversation(
        title=title,
        model=model,
        created_at=created_at,
        updated_at=updated_at or created_at,
        archived_at=archived_at,
        pinned_at=pinned_at,
        messages=messages,
    )


def _marked_leaf(
    parents: Sequence[int | None], marked: Sequence[bool], paths: Sequence[str], problems: Problems
) -> tuple[bool, int | None]:
    """Whether the marks are one path from a first message (recording why not), and
    the path's last message (None: none is marked)."""
    chosen: dict[int | None, int] = {}
    valid = True
    for i, is_marked in enumerate(marked):
        if not is_marked:
            continue
        parent = parents[i]
        if parent is not None and not marked[parent]:
            problems.add(paths[i], "Its parent is not on the current branch.")
            valid = False
        elif parent in chosen:
            problems.add(paths[i], "A sibling of it is on the current branch already.")
            valid = False
        else:
            chosen[parent] = i
    leaves = [i for i in chosen.values() if i not in chosen]
    return valid, (leaves[0] if valid and leaves else None)
