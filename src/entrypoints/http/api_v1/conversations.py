"""``/api/v1/conversations/`` and ``/api/v1/messages/``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from application.conversations import (
    ArchiveConversation,
    ConversationRef,
    DeleteConversation,
    GetConversation,
    ListConversations,
    ListMessages,
    ListUserMessages,
    MessageQuery,
    PinConversation,
    StartConversation,
    StartConversationRequest,
    UnarchiveConversation,
    UnpinConversation,
    UpdateConversation,
    UpdateConversationRequest,
)
from application.pagination import PageRequest
from domain.users import User
from entrypoints.http.api_v1.schemas import (
    ConversationCreateIn,
    ConversationPatchIn,
    ConversationPutIn,
    ConversationV1Out,
    V1MessageOut,
    conversation_v1_out,
    v1_message_out,
)
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.conversation_filters import Archived, Pinned, Search, list_request
from entrypoints.http.pagination import PAGINATION_HEADERS, paged


def _owner(user: User) -> int:
    return user.id


class ConversationsV1Controller(Controller):
    path = "/conversations"
    tags = ["conversations (/api/v1)"]

    @get("/", operation_id="v1_list_conversations", response_headers=PAGINATION_HEADERS)
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_conversations: NamedDependency[ListConversations],
        search: Search = None,
        archived: Archived = None,
        pinned: Pinned = None,
    ) -> Response[list[ConversationV1Out]]:
        """Your conversations, pinned first (latest pinned first), then newest first.

        Archived ones are left out unless `archived=true` (then only they are listed);
        `pinned=true` lists only pinned ones; `search` finds words in the title or any
        message. X-Total-Count counts every match."""
        result = await list_conversations(
            list_request(_owner(user), search, archived, pinned), page
        )
        return paged(request, result, [conversation_v1_out(c) for c in result.items])

    @post(
        "/",
        operation_id="v1_create_conversation",
        status_code=201,
        dto=CheckedBody[ConversationCreateIn],
        return_dto=None,
    )
    async def create_conversation(
        self,
        data: JSONBody[ConversationCreateIn],
        user: NamedDependency[User],
        start_conversation: NamedDependency[StartConversation],
    ) -> ConversationV1Out:
        """Start a conversation with an optional title and model (10 active at most)."""
        conversation = await start_conversation(
            StartConversationRequest(owner_id=_owner(user), title=data.title, model=data.model)
        )
        return conversation_v1_out(conversation)

    @get("/{conversation_id:int}/", operation_id="v1_get_conversation")
    async def get_conversation(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        get_conversation: NamedDependency[GetConversation],
    ) -> ConversationV1Out:
        """One of your conversations."""
        detail = await get_conversation(
            ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        )
        return conversation_v1_out(detail.conversation)

    @put(
        "/{conversation_id:int}/",
        operation_id="v1_put_conversation",
        dto=CheckedBody[ConversationPutIn],
        return_dto=None,
    )
    async def replace_conversation(
        self,
        conversation_id: FromPath[int],
        data: JSONBody[ConversationPutIn],
        user: NamedDependency[User],
        update_conversation: NamedDependency[UpdateConversation],
    ) -> ConversationV1Out:
        """Set the title (required), and optionally the model and status (active/closed)."""
        updated = await update_conversation(
            UpdateConversationRequest(
                owner_id=_owner(user),
                conversation_id=conversation_id,
                title=data.title,
                model=data.model,
                status=data.status,
            )
        )
        return conversation_v1_out(updated)

    @patch(
        "/{conversation_id:int}/",
        operation_id="v1_patch_conversation",
        dto=CheckedBody[ConversationPatchIn],
        return_dto=None,
    )
    async def change_conversation(
        self,
        conversation_id: FromPath[int],
        data: JSONBody[ConversationPatchIn],
        user: NamedDependency[User],
        update_conversation: NamedDependency[UpdateConversation],
    ) -> ConversationV1Out:
        """Change only the fields given: title, model, status (active/closed)."""
        updated = await update_conversation(
            UpdateConversationRequest(
                owner_id=_owner(user),
                conversation_id=conversation_id,
                title=data.title,
                model=data.model,
                status=data.status,
            )
        )
        return conversation_v1_out(updated)

    @post(
        "/{conversation_id:int}/archive/", operation_id="v1_archive_conversation", status_code=200
    )
    async def archive(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        archive_conversation: NamedDependency[ArchiveConversation],
    ) -> ConversationV1Out:
        """Archive a conversation: out of the default list and the active count; it takes
        no messages until unarchived. Idempotent."""
        ref = ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        return conversation_v1_out(await archive_conversation(ref))

    @post(
        "/{conversation_id:int}/unarchive/",
        operation_id="v1_unarchive_conversation",
        status_code=200,
    )
    async def unarchive(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        unarchive_conversation: NamedDependency[UnarchiveConversation],
    ) -> ConversationV1Out:
        """Back to the default list; an active one needs room under the active limit
        (409 otherwise). Idempotent."""
        ref = ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        return conversation_v1_out(await unarchive_conversation(ref))

    @post("/{conversation_id:int}/pin/", operation_id="v1_pin_conversation", status_code=200)
    async def pin(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        pin_conversation: NamedDependency[PinConversation],
    ) -> ConversationV1Out:
        """Pin a conversation: first in your lists, the latest pinned first. Idempotent."""
        ref = ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        return conversation_v1_out(await pin_conversation(ref))

    @post("/{conversation_id:int}/unpin/", operation_id="v1_unpin_conversation", status_code=200)
    async def unpin(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        unpin_conversation: NamedDependency[UnpinConversation],
    ) -> ConversationV1Out:
        """Unpin a conversation. Idempotent."""
        ref = ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        return conversation_v1_out(await unpin_conversation(ref))

    @delete("/{conversation_id:int}/", operation_id="v1_delete_conversation", status_code=204)
    async def delete_conversation(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        delete_conversation: NamedDependency[DeleteConversation],
    ) -> None:
        """Delete a conversation and all its messages."""
        await delete_conversation(
            ConversationRef(owner_id=_owner(user), conversation_id=conversation_id)
        )

    @get(
        "/{conversation_id:int}/messages/",
        operation_id="v1_conversation_messages",
        response_headers=PAGINATION_HEADERS,
    )
    async def conversation_messages(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_messages: NamedDependency[ListMessages],
    ) -> Response[list[V1MessageOut]]:
        """A conversation's messages, oldest first."""
        result = await list_messages(
            ConversationRef(owner_id=_owner(user), conversation_id=conversation_id), page
        )
        return paged(request, result, [v1_message_out(m) for m in result.items])


class MessagesV1Controller(Controller):
    path = "/messages"
    tags = ["chat (/api/v1)"]

    @get("/", operation_id="v1_list_messages", response_headers=PAGINATION_HEADERS)
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_user_messages: NamedDependency[ListUserMessages],
        conversation_id: Annotated[
            int | None, QueryParameter(description="Only this conversation's messages.")
        ] = None,
    ) -> Response[list[V1MessageOut]]:
        """Your messages across conversations (or one), oldest first."""
        result = await list_user_messages(
            MessageQuery(owner_id=_owner(user), conversation_id=conversation_id), page
        )
        return paged(request, result, [v1_message_out(m) for m in result.items])
