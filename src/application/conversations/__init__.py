"""Use cases for a user's own conversations: starting, listing, reading, changing and
deleting them (``crud``), their lifecycle (``lifecycle``: close/reopen, archive, pin),
and reading their messages (``messages``)."""

from application.conversations.crud import (
    ConversationDetail,
    DeleteConversation,
    GetConversation,
    ListConversations,
    ListConversationsRequest,
    StartConversation,
    StartConversationRequest,
    UpdateConversation,
    UpdateConversationRequest,
)
from application.conversations.lifecycle import (
    ArchiveConversation,
    CloseConversation,
    PinConversation,
    ReopenConversation,
    UnarchiveConversation,
    UnpinConversation,
)
from application.conversations.messages import ListMessages, ListUserMessages, MessageQuery
from application.conversations.owned import ConversationRef

__all__ = [
    "ArchiveConversation",
    "CloseConversation",
    "ConversationDetail",
    "ConversationRef",
    "DeleteConversation",
    "GetConversation",
    "ListConversations",
    "ListConversationsRequest",
    "ListMessages",
    "ListUserMessages",
    "MessageQuery",
    "PinConversation",
    "ReopenConversation",
    "StartConversation",
    "StartConversationRequest",
    "UnarchiveConversation",
    "UnpinConversation",
    "UpdateConversation",
    "UpdateConversationRequest",
]
