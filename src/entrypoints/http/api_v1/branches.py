"""Branches in the /api/v1 dialect: ``/api/v1/messages/{id}/regenerate|edit|select/`` and
``/api/v1/conversations/{id}/tree/``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from application.branches import (
    TREE_PAGE_MAX,
    ConversationTreeRequest,
    GetConversationTree,
    SwitchBranch,
    SwitchBranchRequest,
)
from application.chat import FollowReply, SendMessage, SendMessageRequest, StreamMessage
from application.idempotency import IdempotentRequests
from domain.branches import Rewrite, RewriteKind
from domain.users import User
from entrypoints.http import branch_docs
from entrypoints.http.api_v1.chat import answer_turn
from entrypoints.http.api_v1.schemas import ChatOut, V1MessageOut, v1_message_out
from entrypoints.http.auth import Caller
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.schema_docs import MessageText, ModelId
from entrypoints.http.streaming import STREAM_RESPONSE


class RegenerateIn(msgspec.Struct):
    model: ModelId | None = None
    stream: bool = False


class EditIn(msgspec.Struct):
    message: MessageText
    model: ModelId | None = None
    stream: bool = False


class TreeNodeOut(msgspec.Struct):
    id: int
    parent_id: int | None
    sibling_ids: list[int]
    on_current_branch: bool
    message: V1MessageOut


class TreeOut(msgspec.Struct):
    conversation: int
    nodes: list[TreeNodeOut]
    next_after: int | None


class BranchesV1Controller(Controller):
    path = "/"
    tags = ["branches (/api/v1)"]

    @post(
        "/messages/{message_id:int}/regenerate/",
        operation_id="v1_regenerate_reply",
        status_code=201,
        responses=STREAM_RESPONSE,
        dto=CheckedBody[RegenerateIn],
        return_dto=None,
        description=branch_docs.REGENERATE,
    )
    async def regenerate(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[int],
        caller: NamedDependency[Caller],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        follow_reply: NamedDependency[FollowReply],
        idempotent_requests: NamedDependency[IdempotentRequests],
        data: JSONBody[RegenerateIn | None] = None,
    ) -> Response[ChatOut]:
        command = SendMessageRequest(
            owner_id=caller.id,
            unconfirmed_caller=caller.unconfirmed,
            conversation_id=None,
            text="",
            model=None if data is None else data.model,
            rewrite=Rewrite(kind=RewriteKind.REGENERATE, message_id=message_id),
        )
        return await answer_turn(
            request,
            caller.id,
            command,
            data is not None and data.stream,
            send_message,
            stream_message,
            follow_reply,
            idempotent_requests,
        )

    @post(
        "/messages/{message_id:int}/edit/",
        operation_id="v1_edit_message",
        status_code=201,
        responses=STREAM_RESPONSE,
        dto=CheckedBody[EditIn],
        return_dto=None,
        description=branch_docs.EDIT,
    )
    async def edit(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[int],
        data: JSONBody[EditIn],
        caller: NamedDependency[Caller],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        follow_reply: NamedDependency[FollowReply],
        idempotent_requests: NamedDependency[IdempotentRequests],
    ) -> Response[ChatOut]:
        command = SendMessageRequest(
            owner_id=caller.id,
            unconfirmed_caller=caller.unconfirmed,
            conversation_id=None,
            text=data.message,
            model=data.model,
            rewrite=Rewrite(kind=RewriteKind.EDIT, message_id=message_id),
        )
        return await answer_turn(
            request,
            caller.id,
            command,
            data.stream,
            send_message,
            stream_message,
            follow_reply,
            idempotent_requests,
        )

    @post(
        "/messages/{message_id:int}/select/",
        operation_id="v1_select_branch",
        status_code=200,
        description=branch_docs.SELECT,
    )
    async def select(
        self,
        message_id: FromPath[int],
        user: NamedDependency[User],
        switch_branch: NamedDependency[SwitchBranch],
    ) -> V1MessageOut:
        newest = await switch_branch(SwitchBranchRequest(owner_id=user.id, message_id=message_id))
        return v1_message_out(newest)

    @get(
        "/conversations/{conversation_id:int}/tree/",
        operation_id="v1_conversation_tree",
        description=branch_docs.TREE,
    )
    async def tree(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        get_conversation_tree: NamedDependency[GetConversationTree],
        after: Annotated[int, QueryParameter(ge=0, description="The last id seen.")] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=TREE_PAGE_MAX)] = 100,
    ) -> TreeOut:
        page = await get_conversation_tree(
            ConversationTreeRequest(
                owner_id=user.id, conversation_id=conversation_id, after_id=after, limit=limit
            )
        )
        return TreeOut(
            conversation=conversation_id,
            nodes=[
                TreeNodeOut(
                    id=node.message.id,
                    parent_id=node.message.parent_id,
                    sibling_ids=node.sibling_ids,
                    on_current_branch=node.message.on_branch,
                    message=v1_message_out(node.message),
                )
                for node in page.nodes
            ],
            next_after=page.next_after_id,
        )
