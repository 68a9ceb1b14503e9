"""``/api/conversations/`` (the DRF-style dialect, user side)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from application.chat import (
    CancelReply,
    FollowReply,
    ReplyRef,
    SendMessage,
    SendMessageRequest,
    StreamMessage,
)
from application.conversations import (
    ArchiveConversation,
    CloseConversation,
    ConversationRef,
    GetConversation,
    ListConversations,
    ListMessages,
    PinConversation,
    ReopenConversation,
    StartConversation,
    StartConversationRequest,
    UnarchiveConversation,
    UnpinConversation,
)
from application.idempotency import IdempotentRequests
from application.pagination import PageRequest
from domain.users import User
from entrypoints.http.api.schemas import (
    ConversationOut,
    MessageOut,
    SendMessageIn,
    SendMessageOut,
    conversation_out,
    exchange_body,
    exchange_out,
    message_out,
)
from entrypoints.http.auth import Caller
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.conversation_filters import Archived, Pinned, Search, list_request
from entrypoints.http.idempotency import idempotent
from entrypoints.http.pagination import PAGINATION_HEADERS, paged
from entrypoints.http.streaming import (
    CANCEL_DESCRIPTION,
    FOLLOW_DESCRIPTION,
    FOLLOW_RESPONSE,
    STREAM_RESPONSE,
    follow_stored_reply,
    stream_turn,
    wants_stream,
)


def _ref(user: NamedDependency[User], conversation_id: int) -> ConversationRef:
    return ConversationRef(owner_id=user.id, conversation_id=conversation_id)


class ConversationsController(Controller):
    path = "/conversations"
    tags = ["conversations (/api)"]

    @get("/", operation_id="api_list_conversations", response_headers=PAGINATION_HEADERS)
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_conversations: NamedDependency[ListConversations],
        search: Search = None,
        archived: Archived = None,
        pinned: Pinned = None,
    ) -> Response[list[ConversationOut]]:
        """Your conversations, pinned first (latest pinned first), then newest first.

        Archived ones are left out unless `archived=true` (then only they are listed);
        `pinned=true` lists only pinned ones; `search` finds words in the title or any
        message. X-Total-Count counts every match. Messages are in the detail endpoint."""
        result = await list_conversations(list_request(user.id, search, archived, pinned), page)
        return paged(request, result, [conversation_out(c, user) for c in result.items])

    @post("/", operation_id="api_create_conversation", status_code=201)
    async def create_conversation(
        self, user: NamedDependency[User], start_conversation: NamedDependency[StartConversation]
    ) -> ConversationOut:
        """Start a new active conversation (at most 10 active per user; 409 beyond)."""
        conversation = await start_conversation(StartConversationRequest(owner_id=user.id))
        return conversation_out(conversation, user)

    @get("/{conversation_id:int}/", operation_id="api_get_conversation")
    async def get_conversation(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        get_conversation: NamedDependency[GetConversation],
    ) -> ConversationOut:
        """One of your conversations with all its messages, oldest first."""
        detail = await get_conversation(_ref(user, conversation_id))
        return conversation_out(detail.conversation, user, detail.messages)

    @post("/{conversation_id:int}/close/", operation_id="api_close_conversation", status_code=200)
    async def close_conversation(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        close_conversation: NamedDependency[CloseConversation],
    ) -> ConversationOut:
        """Close a conversation; it keeps its messages and takes no new ones. Idempotent."""
        return conversation_out(await close_conversation(_ref(user, conversation_id)), user)

    @post("/{conversation_id:int}/reopen/", operation_id="api_reopen_conversation", status_code=200)
    async def reopen_conversation(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        reopen_conversation: NamedDependency[ReopenConversation],
    ) -> ConversationOut:
        """Make a closed conversation active again (within the active limit). Idempotent."""
        return conversation_out(await reopen_conversation(_ref(user, conversation_id)), user)

    @post(
        "/{conversation_id:int}/archive/", operation_id="api_archive_conversation", status_code=200
    )
    async def archive(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        archive_conversation: NamedDependency[ArchiveConversation],
    ) -> ConversationOut:
        """Archive a conversation: out of the default list and the active count; it takes
        no messages until unarchived. Idempotent."""
        return conversation_out(await archive_conversation(_ref(user, conversation_id)), user)

    @post(
        "/{conversation_id:int}/unarchive/",
        operation_id="api_unarchive_conversation",
        status_code=200,
    )
    async def unarchive(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        unarchive_conversation: NamedDependency[UnarchiveConversation],
    ) -> ConversationOut:
        """Back to the default list; an active one needs room under the active limit
        (409 otherwise). Idempotent."""
        return conversation_out(await unarchive_conversation(_ref(user, conversation_id)), user)

    @post("/{conversation_id:int}/pin/", operation_id="api_pin_conversation", status_code=200)
    async def pin(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        pin_conversation: NamedDependency[PinConversation],
    ) -> ConversationOut:
        """Pin a conversation: first in your lists, the latest pinned first. Idempotent."""
        return conversation_out(await pin_conversation(_ref(user, conversation_id)), user)

    @post("/{conversation_id:int}/unpin/", operation_id="api_unpin_conversation", status_code=200)
    async def unpin(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        unpin_conversation: NamedDependency[UnpinConversation],
    ) -> ConversationOut:
        """Unpin a conversation. Idempotent."""
        return conversation_out(await unpin_conversation(_ref(user, conversation_id)), user)

    @get(
        "/{conversation_id:int}/messages/",
        operation_id="api_list_messages",
        response_headers=PAGINATION_HEADERS,
    )
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_messages: NamedDependency[ListMessages],
    ) -> Response[list[MessageOut]]:
        """A conversation's messages, oldest first."""
        result = await list_messages(_ref(user, conversation_id), page)
        return paged(request, result, [message_out(m) for m in result.items])

    @post(
        "/{conversation_id:int}/send_message/",
        operation_id="api_send_message",
        status_code=201,
        responses=STREAM_RESPONSE,
        dto=CheckedBody[SendMessageIn],
        return_dto=None,
    )
    async def send_message(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[int],
        data: JSONBody[SendMessageIn],
        caller: NamedDependency[Caller],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        follow_reply: NamedDependency[FollowReply],
        idempotent_requests: NamedDependency[IdempotentRequests],
    ) -> Response[SendMessageOut]:
        """Send a message and get the model's reply.

        The message (1-4000 characters) is stored before the model is called; if the
        model fails, it stays stored and the answer is 502/503/504. With
        `"stream": true` or `Accept: text/event-stream` the reply streams as
        Server-Sent Events: `reply` (the stored messages and the reply's stream and
        cancel URLs), `delta` events `{"text"}`, then `done` with the stored messages,
        usage and status (an `error` event precedes it if the reply did not complete).
        The server finishes the reply even if the client leaves. An `Idempotency-Key`
        header makes a retry return the first answer (a stream: the same reply)."""
        command = SendMessageRequest(
            owner_id=caller.id,
            unconfirmed_caller=caller.unconfirmed,
            conversation_id=conversation_id,
            text=data.message,
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


async def answer_turn(
    request: Request[Any, Any, Any],
    owner_id: int,
    command: SendMessageRequest,
    stream: bool,
    send_message: SendMessage,
    stream_message: StreamMessage,
    follow_reply: FollowReply,
    idempotent_requests: IdempotentRequests,
) -> Response[Any]:
    """A turn answered as this dialect answers one: streamed when asked, else the
    exchange (201); idempotent with an ``Idempotency-Key``."""
    if wants_stream(request, stream):
        return await stream_turn(
            request,
            owner_id,
            command,
            stream_message,
            follow_reply,
            idempotent_requests,
            exchange_body,
        )

    async def answer() -> Response[Any]:
        return Response(exchange_out(await send_message(command)), status_code=201)

    return await idempotent(request, owner_id, idempotent_requests, answer)


class RepliesController(Controller):
    """A streamed reply, while the server writes it and after: follow it, stop it."""

    path = "/messages"
    tags = ["conversations (/api)"]

    @get(
        "/{message_id:int}/stream/",
        operation_id="api_follow_reply",
        responses=FOLLOW_RESPONSE,
        media_type="text/event-stream",
        description=FOLLOW_DESCRIPTION,
    )
    async def follow(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[int],
        user: NamedDependency[User],
        follow_reply: NamedDependency[FollowReply],
    ) -> Response[Any]:
        return await follow_stored_reply(request, user, message_id, follow_reply, exchange_body)

    @post(
        "/{message_id:int}/cancel/",
        operation_id="api_cancel_reply",
        status_code=200,
        description=CANCEL_DESCRIPTION,
    )
    async def cancel(
        self,
        message_id: FromPath[int],
        user: NamedDependency[User],
        cancel_reply: NamedDependency[CancelReply],
    ) -> MessageOut:
        return message_out(await cancel_reply(ReplyRef(owner_id=user.id, reply_id=message_id)))
