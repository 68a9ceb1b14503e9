"""Chatting with the model: preparing a turn, sending it, streaming it, recording it, and
following, stopping and recovering streamed replies."""

from application.chat.call_records import CallRecorder
from application.chat.completions import (
    CompleteChat,
    CompletionPreparation,
    CompletionRequest,
    StreamChat,
)
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
from application.chat.turns import HistoryBudget, Sampling, SendMessageRequest

__all__ = [
    "CallRecorder",
    "CancelReply",
    "CompleteChat",
    "CompletionPreparation",
    "CompletionRequest",
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
    "Sampling",
    "SendMessage",
    "SendMessageRequest",
    "StartedReply",
    "StreamChat",
    "StreamEvent",
    "StreamMessage",
    "TextChunk",
    "TurnPreparation",
    "TurnRecorder",
]
