"""Export and import of conversations: Parley's own JSON format (every branch), the
Markdown of a current branch, and ChatGPT's ``conversations.json``.

Pure: rendering takes domain objects and gives text; reading takes the JSON values of a
file (already decoded) and gives what to store, or raises ``InvalidImport`` naming the
path of every bad field (``conversations[3].messages[12].role``)."""

from __future__ import annotations

import heapq
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from domain.conversation import (
    TITLE_MAX_CHARS,
    Conversation,
    ConversationStatus,
    Message,
    MessageRole,
    MessageStatus,
    NewConversation,
    NewMessage,
)
from domain.errors import InvalidInput

FORMAT_NAME = "parley-conversations"
FORMAT_VERSION = 1

# What one file may hold: the request body limit bounds its bytes; this bounds the rows
# one transaction writes.
MAX_IMPORT_MESSAGES = 100_000
# A bad file is usually bad in one way many times; the first errors say what it is.
MAX_REPORTED_ERRORS = 50


class ExportFormat(StrEnum):
    JSON = "json"
    MARKDOWN = "markdown"


E = TypeVar("E", bound=StrEnum)


class InvalidImport(InvalidInput):
    code = "invalid_import"


@dataclass(frozen=True, kw_only=True)
class ImportedMessage:
    """A message to store; ``parent`` is the index of its parent among its
    conversation's messages (always an earlier one), None for a first message."""

    parent: int | None
    role: MessageRole
    content: str
    created_at: datetime
    status: MessageStatus = MessageStatus.COMPLETED
    model: str | None = None
    provider: str | None = None
    image_url: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning: str | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    on_branch: bool = False

    def to_store(self, conversation_id: int) -> NewMessage:
        """Imported history is billed nothing here: it was paid for where it was made."""
        return NewMessage(
            conversation_id=conversation_id,
            role=self.role,
            content=self.content,
            created_at=self.created_at,
            status=self.status,
            model=self.model,
            provider=self.provider,
            image_url=self.image_url,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            reasoning_tokens=self.reasoning_tokens,
            reasoning=self.reasoning,
            finish_reason=self.finish_reason,
            error_code=self.error_code,
            on_branch=self.on_branch,
        )


@dataclass(frozen=True, kw_only=True)
class ImportedConversation:
    title: str
    model: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    pinned_at: datetime | None
    messages: tuple[ImportedMessage, ...]

    def to_store(self, owner_id: int, *, model: str | None) -> NewConversation:
        """An imported conversation arrives closed, so it never counts against the
        active limit; its owner reopens it within the limit."""
        return NewConversation(
            owner_id=owner_id,
            title=self.title,
            model=model,
            status=ConversationStatus.CLOSED,
            created_at=self.created_at,
            updated_at=self.updated_at,
            archived_at=self.archived_at,
            pinned_at=self.pinned_at,
        )


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


# -- import: shared ---------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        if path in self.errors or len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.setdefault(path, []).append(message)

    def raise_any(self) -> None:
        if self.errors:
            raise InvalidImport(self.errors)


REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
UNKNOWN = "Unknown field."
NOT_TEXT = "Not a valid string."
NO_NUL = "Null characters are not allowed."
NOT_INTEGER = "A valid integer is required."
NOT_BOOLEAN = "Must be a valid boolean."
NOT_TIME = "Not an ISO 8601 date and time with its UTC offset."
NOT_OBJECT = "Expected an object."
NOT_LIST = "Expected a list."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Fields:
    """Typed reads of one JSON object's fields, each error recorded at its path."""

    def __init__(
        self,
        record: dict[str, Any],
        path: str,
        problems: _Problems,
        known: frozenset[str] | None = None,
    ) -> None:
        self.record = record
        self.path = path
        self.problems = problems
        if known is not None:
            for key in record:
                if key not in known:
                    problems.add(_join(path, key), UNKNOWN)

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def _get(self, key: str, *, required: bool, nullable: bool) -> tuple[bool, Any]:
        if key not in self.record:
            if required:
                self.problems.add(self.at(key), REQUIRED)
            return False, None
        value = self.record[key]
        if value is None:
            if not nullable:
                self.problems.add(self.at(key), NOT_NULL)
            return False, None
        return True, value

    def text(
        self, key: str, *, required: bool = False, nullable: bool = True, limit: int | None = None
    ) -> str | None:
        found, value = self._get(key, required=required, nullable=nullable)
        if not found:
            return None
        if not isinstance(value, str):
            self.problems.add(self.at(key), NOT_TEXT)
            return None
        if "\x00" in value:
            # PostgreSQL cannot store NUL in text.
            self.problems.add(self.at(key), NO_NUL)
            return None
        if limit is not None and len(value) > limit:
            self.problems.add(
                self.at(key), f"Ensure this field has no more than {limit} characters."
            )
            return None
        return value

    def count(self, key: str) -> int:
        found, value = self._get(key, required=False, nullable=False)
        if not found:
            return 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.at(key), NOT_INTEGER)
            return 0
        if not 0 <= value <= 2_147_483_647:
            self.problems.add(self.at(key), "Ensure this value is between 0 and 2147483647.")
            return 0
        return value

    def flag(self, key: str) -> bool:
        found, value = self._get(key, required=False, nullable=False)
        if not found:
            return False
        if not isinstance(value, bool):
            self.problems.add(self.at(key), NOT_BOOLEAN)
            return False
        return value

    def time(self, key: str, *, required: bool = False) -> datetime | None:
        found, value = self._get(key, required=required, nullable=not required)
        if not found:
            return None
        try:
            when = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            self.problems.add(self.at(key), NOT_TIME)
            return None
        return when.astimezone(UTC)

    def key(self, key: str, *, required: bool) -> Hashable | None:
        """A message's id in the file, or a reference to one: an integer or a string."""
        found, value = self._get(key, required=required, nullable=not required)
        if not found:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problems.add(self.at(key), "Expected an integer or a string id.")
            return None
        return value

    def choice(self, key: str, kind: type[E], default: E) -> E:
        found, value = self._get(key, required=False, nullable=False)
        if not found:
            return default
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(f'"{member.value}"' for member in kind)
            self.problems.add(self.at(key), f"Must be one of {choices}.")
            return default


def _parent_indexes(
    keys: Sequence[Hashable],
    parent_keys: Sequence[Hashable | None],
    *,
    id_paths: Sequence[str],
    parent_paths: Sequence[str],
    problems: _Problems,
) -> list[int | None] | None:
    """Each message's parent as an index; None after recording a duplicate id or a
    parent that names no message."""
    index: dict[Hashable, int] = {}
    valid = True
    for i, key in enumerate(keys):
        if key in index:
            problems.add(id_paths[i], "Another message of this conversation has this id.")
            valid = False
        else:
            index[key] = i
    parents: list[int | None] = []
    for i, parent_key in enumerate(parent_keys):
        found = None if parent_key is None else index.get(parent_key)
        if parent_key is not None and found is None:
            problems.add(parent_paths[i], "No message of this conversation has this id.")
            valid = False
        parents.append(found)
    return parents if valid else None


def _tree_order(
    keys: Sequence[Hashable],
    parent_keys: Sequence[Hashable | None],
    sort_keys: Sequence[float],
    *,
    id_paths: Sequence[str],
    parent_paths: Sequence[str],
    problems: _Problems,
) -> tuple[list[int], list[int | None]] | None:
    """The order to store these messages in (parents first; among those ready, by
    ``sort_keys`` then file order) and each one's parent index; None after recording
    a duplicate id, a parent that names no message, or a cycle."""
    parents = _parent_indexes(
        keys, parent_keys, id_paths=id_paths, parent_paths=parent_paths, problems=problems
    )
    if parents is None:
        return None
    children: list[list[int]] = [[] for _ in keys]
    ready: list[tuple[float, int]] = []
    for i, parent in enumerate(parents):
        if parent is None:
            ready.append((sort_keys[i], i))
        else:
            children[parent].append(i)
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for child in children[i]:
            heapq.heappush(ready, (sort_keys[child], child))
    if len(order) < len(keys):
        # Each message has one parent, so one that no first message leads to is on (or
        # below) a cycle.
        placed = set(order)
        for i in range(len(keys)):
            if i not in placed:
                problems.add(
                    parent_paths[i], "The parents form a cycle: no first message leads here."
                )
        return None
    return order, parents


def _branch_flags(parents: Sequence[int | None], leaf: int | None) -> list[bool]:
    flags = [False] * len(parents)
    while leaf is not None:
        flags[leaf] = True
        leaf = parents[leaf]
    return flags


def _reindexed(
    order: Sequence[int], parents: Sequence[int | None]
) -> tuple[dict[int, int], list[int | None]]:
    """Positions in storage order, and each stored message's parent position."""
    position = {original: at for at, original in enumerate(order)}
    stored: list[int | None] = []
    for original in order:
        parent = parents[original]
        stored.append(None if parent is None else position[parent])
    return position, stored


def parse_import(document: object) -> list[ImportedConversation]:
    """A Parley export (an object with ``"format": "parley-conversations"``) or a
    ChatGPT ``conversations.json`` (an array of conversations)."""
    if isinstance(document, list):
        return parse_chatgpt(document)
    if isinstance(document, dict):
        return parse_parley(document)
    raise InvalidImport(
        {
            "non_field_errors": [
                f'Expected a Parley export (an object with "format": "{FORMAT_NAME}") '
                "or a ChatGPT conversations.json (an array)."
            ]
        }
    )


def _check_size(conversations: Sequence[ImportedConversation]) -> None:
    total = sum(len(c.messages) for c in conversations)
    if total > MAX_IMPORT_MESSAGES:
        raise InvalidImport(
            {
                "non_field_errors": [
                    f"The file holds {total} messages; at most {MAX_IMPORT_MESSAGES} are "
                    "imported at once. Split it and import the parts."
                ]
            }
        )


# -- import: Parley JSON -------------------------------------------------------------------

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
    problems = _Problems()
    fields = _Fields(document, "", problems, _DOCUMENT_FIELDS)
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
    found: list[ImportedConversation] = []
    for i, item in enumerate(raw):
        conversation = _parley_conversation(item, f"conversations[{i}]", problems)
        if conversation is not None:
            found.append(conversation)
    problems.raise_any()
    _check_size(found)
    return found


def _parley_conversation(item: Any, path: str, problems: _Problems) -> ImportedConversation | None:
    if not isinstance(item, dict):
        problems.add(path, NOT_OBJECT)
        return None
    fields = _Fields(item, path, problems, _CONVERSATION_FIELDS)
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
        m = _Fields(entry, mpath, problems, _MESSAGE_FIELDS)
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
    tree = _tree_order(
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
    flags = _branch_flags(parents, leaf)
    _, stored_parents = _reindexed(order, parents)
    messages = tuple(
        _with(read[original], parent=stored_parents[at], on_branch=flags[original])
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
    parents: Sequence[int | None], marked: Sequence[bool], paths: Sequence[str], problems: _Problems
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


def _with(message: ImportedMessage, *, parent: int | None, on_branch: bool) -> ImportedMessage:
    return replace(message, parent=parent, on_branch=on_branch)


# -- import: ChatGPT conversations.json ----------------------------------------------------

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
    problems = _Problems()
    found: list[ImportedConversation] = []
    for i, item in enumerate(document):
        conversation = _chatgpt_conversation(item, f"[{i}]", problems)
        if conversation is not None:
            found.append(conversation)
    problems.raise_any()
    _check_size(found)
    return found


@dataclass(frozen=True)
class _Node:
    key: str
    parent: str | None
    message: ImportedMessage | None
    sort_key: float


def _chatgpt_conversation(item: Any, path: str, problems: _Problems) -> ImportedConversation | None:
    if not isinstance(item, dict):
        problems.add(path, NOT_OBJECT)
        return None
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        problems.add(_join(path, "title"), NOT_TEXT)
    created = _epoch(item.get("create_time"))
    if item.get("create_time") is not None and created is None:
        problems.add(_join(path, "create_time"), "Expected seconds since the epoch.")
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        problems.add(_join(path, "mapping"), REQUIRED if mapping is None else NOT_OBJECT)
        return None
    current = item.get("current_node")
    if current is not None and (not isinstance(current, str) or current not in mapping):
        problems.add(_join(path, "current_node"), "No node of the mapping has this id.")
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
    mapping: dict[str, Any], path: str, when: datetime, problems: _Problems
) -> list[_Node] | None:
    nodes: list[_Node] = []
    for key, node in mapping.items():
        npath = f"{path}.mapping.{key}"
        if not isinstance(node, dict):
            problems.add(npath, NOT_OBJECT)
            continue
        parent = node.get("parent")
        if parent is not None and not isinstance(parent, str):
            problems.add(_join(npath, "parent"), NOT_TEXT)
            continue
        message = _chatgpt_message(node.get("message"), _join(npath, "message"), when, problems)
        sort_key = (message.created_at if message is not None else when).timestamp()
        nodes.append(_Node(str(key), parent, message, sort_key))
    return nodes if len(nodes) == len(mapping) else None


def _chatgpt_tree(
    nodes: list[_Node], current: str | None, path: str, problems: _Problems
) -> tuple[ImportedMessage, ...] | None:
    """The kept messages in storage order, each under its nearest kept ancestor, the
    path to ``current`` (or the newest) marked as the current branch."""
    tree = _tree_order(
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
    kept_tree = _tree_order(
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
    flags = _branch_flags(kept_parents, leaf)
    _, stored_parents = _reindexed(order, kept_parents)
    messages = []
    for at, original in enumerate(order):
        message = nodes[kept[original]].message
        assert message is not None
        messages.append(_with(message, parent=stored_parents[at], on_branch=flags[original]))
    return tuple(messages)


def _chatgpt_message(
    raw: Any, path: str, fallback_time: datetime, problems: _Problems
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
        problems.add(_join(path, "author.role"), NOT_TEXT)
        return None
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if role not in _KEPT_ROLES or metadata.get("is_visually_hidden_from_conversation") is True:
        return None
    if raw.get("recipient", "all") != "all":
        return None
    content = raw.get("content")
    if not isinstance(content, dict):
        problems.add(_join(path, "content"), NOT_OBJECT)
        return None
    if content.get("content_type") not in _TEXT_TYPES:
        return None
    parts = content.get("parts")
    if not isinstance(parts, list):
        problems.add(_join(path, "content.parts"), NOT_LIST)
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
