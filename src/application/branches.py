"""A conversation's branches: choosing which one is current, and reading the tree."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import UnitOfWork
from domain.conversation import Message
from domain.errors import NotFound

TREE_PAGE_MAX = 500


@dataclass(frozen=True, kw_only=True)
class SwitchBranchRequest:
    owner_id: int
    message_id: int


class SwitchBranch:
    """Make the branch through one of the user's messages current: the path from the
    conversation's first message to the newest message at or below it (the last thing
    written on that branch). Choosing a message already on the current branch keeps the
    branch up to it and goes down to its newest descendant. The model sees the new
    current branch from the next turn on. Answers the new current branch's last message."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, command: SwitchBranchRequest) -> Message:
        async with self._uow as uow:
            chosen = await uow.messages.owned(command.message_id, command.owner_id)
            if chosen is None:
                raise NotFound("Message not found.")
            leaf = await uow.messages.newest_leaf_under(chosen.id)
            await uow.messages.switch_branch(chosen.conversation_id, leaf)
            [newest] = await uow.messages.latest(chosen.conversation_id, 1)
            await uow.commit()
        return newest


@dataclass(frozen=True, kw_only=True)
class ConversationTreeRequest:
    owner_id: int
    conversation_id: int
    after_id: int = 0
    limit: int = 100


@dataclass(frozen=True, kw_only=True)
class TreeNode:
    message: Message
    sibling_ids: list[int]  # the children of its parent, itself included, oldest first


@dataclass(frozen=True, kw_only=True)
class TreePage:
    nodes: list[TreeNode]
    next_after_id: int | None  # None: this page is the last


class GetConversationTree:
    """Every message of one of the user's conversations, of every branch, oldest first,
    each with its parent, its siblings and whether it is on the current branch; paged by
    id (``after_id``), at most ``TREE_PAGE_MAX`` a page."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, command: ConversationTreeRequest) -> TreePage:
        limit = max(1, min(command.limit, TREE_PAGE_MAX))
        async with self._uow as uow:
            owned = await uow.conversations.get_owned(command.conversation_id, command.owner_id)
            if owned is None:
                raise NotFound("Conversation not found.")
            found = await uow.messages.tree(owned.id, after_id=command.after_id, limit=limit + 1)
            page = found[:limit]
            groups = await uow.messages.sibling_groups(owned.id, {m.parent_id for m in page})
        return TreePage(
            nodes=[TreeNode(message=m, sibling_ids=groups[m.parent_id]) for m in page],
            next_after_id=page[-1].id if len(found) > limit else None,
        )
