"""The import checks both formats share: typed reads of a JSON object's fields, every
problem recorded at its path (``conversations[3].messages[12].role``) and reported
together, and the ordering of a message tree (parents first, no duplicate ids, no
dangling parents, no cycles) with its current branch."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from domain.transfer.imported import ImportedConversation, InvalidImport

# What one file may hold: the request body limit bounds its bytes; this bounds the rows
# one transaction writes.
MAX_IMPORT_MESSAGES = 100_000
# A bad file is usually bad in one way many times; the first errors say what it is.
MAX_REPORTED_ERRORS = 50

E = TypeVar("E", bound=StrEnum)


class Problems:
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


def field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Fields:
    """Typed reads of one JSON object's fields, each error recorded at its path."""

    def __init__(
        self,
        record: dict[str, Any],
        path: str,
        problems: Problems,
        known: frozenset[str] | None = None,
    ) -> None:
        self.record = record
        self.path = path
        self.problems = problems
        if known is not None:
            for key in record:
                if key not in known:
                    problems.add(field_path(path, key), UNKNOWN)

    def at(self, key: str) -> str:
        return field_path(self.path, key)

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
    problems: Problems,
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


def tree_order(
    keys: Sequence[Hashable],
    parent_keys: Sequence[Hashable | None],
    sort_keys: Sequence[float],
    *,
    id_paths: Sequence[str],
    parent_paths: Sequence[str],
    problems: Problems,
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


def branch_flags(parents: Sequence[int | None], leaf: int | None) -> list[bool]:
    flags = [False] * len(parents)
    while leaf is not None:
        flags[leaf] = True
        leaf = parents[leaf]
    return flags


def reindexed(
    order: Sequence[int], parents: Sequence[int | None]
) -> tuple[dict[int, int], list[int | None]]:
    """Positions in storage order, and each stored message's parent position."""
    position = {original: at for at, original in enumerate(order)}
    stored: list[int | None] = []
    for original in order:
        parent = parents[original]
        stored.append(None if parent is None else position[parent])
    return position, stored


def check_size(conversations: Sequence[ImportedConversation]) -> None:
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


def each_conversation(
    items: Sequence[Any],
    path: str,
    parse: Callable[[Any, str, Problems], ImportedConversation | None],
    problems: Problems,
) -> list[ImportedConversation]:
    """Every item of a document's conversation list, parsed by its format's ``parse``; all
    the problems of all of them reported at once, then the size limit checked."""
    found: list[ImportedConversation] = []
    for i, item in enumerate(items):
        conversation = parse(item, f"{path}[{i}]", problems)
        if conversation is not None:
            found.append(conversation)
    problems.raise_any()
    check_size(found)
    return found
