"""Chatting with the model: preparing a turn, sending it, streaming it, recording it."""

from application.chat.background import BackgroundWrites
from application.chat.preparation import TurnPreparation
from application.chat.recording import TurnRecorder
from application.chat.send import Exchange, SendMessage
from application.chat.stream import ReplyEnded, ReplyStream, StreamEvent, StreamMessage, TextChunk
from application.chat.turns import HistoryBudget, SendMessageRequest

__all__ = [
    "BackgroundWrites",
    "Exchange",
    "HistoryBudget",
    "ReplyEnded",
    "ReplyStream",
    "SendMessage",
    "SendMessageRequest",
    "StreamEvent",
    "StreamMessage",
    "TextChunk",
    "TurnPreparation",
    "TurnRecorder",
]
