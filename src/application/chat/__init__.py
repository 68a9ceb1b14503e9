"""Chatting with the model: preparing a turn, sending it, streaming it, recording it, and
following, stopping and recovering streamed replies."""

from application.chat.generations import Generations, ReplyLease
from application.chat.preparation import TurnPreparation
from application.chat.recording import TurnRecorder
from application.chat.replies import (
    CancelReply,
    FollowReply,
    FollowReplyRequest,
    MarkInterruptedReplies,
    ReplyEnded,
    ReplyFollow,
    ReplyRef,
    ReplyWait,
    StreamEvent,
    TextChunk,
)
from application.chat.send import Exchange, SendMessage
from application.chat.stream import StartedReply, StreamMessage
from application.chat.turns import HistoryBudget, SendMessageRequest

__all__ = [
    "CancelReply",
    "Exchange",
    "FollowReply",
    "FollowReplyRequest",
    "Generations",
    "HistoryBudget",
    "MarkInterruptedReplies",
    "ReplyEnded",
    "ReplyFollow",
    "ReplyLease",
    "ReplyRef",
    "ReplyWait",
    "SendMessage",
    "SendMessageRequest",
    "StartedReply",
    "StreamEvent",
    "StreamMessage",
    "TextChunk",
    "TurnPreparation",
    "TurnRecorder",
]
