"""The chat model port and what travels through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

ChatRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True, kw_only=True)
class ChatTurn:
    """``image_url`` is always a ``data:`` URI: images are fetched once, when sent."""

    role: ChatRole
    content: str
    image_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatTurn]
    temperature: float
    max_tokens: int


@dataclass(frozen=True, kw_only=True)
class TokenUsage:
    """What the provider bills. ``completion_tokens`` includes ``reasoning_tokens``."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Finish reasons in one vocabulary for every wire format (OpenAI's, which clients know):
# "stop", "length", "content_filter" (a safety system withheld the answer), "refusal"
# (the model declined, in words: the text is its refusal); others pass through lower-cased.
CONTENT_FILTER = "content_filter"


@dataclass(frozen=True, kw_only=True)
class ChatCompletion:
    text: str
    model: str
    provider: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str = "stop"
    reasoning: str = ""


@dataclass(frozen=True, kw_only=True)
class ChatDelta:
    """A piece of a streamed answer; the last one carries usage and finish reason.

    ``reasoning`` is the model's thinking, never part of the answer's text."""

    text: str = ""
    reasoning: str = ""
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None


class ChatModel(Protocol):
    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """Raise a ``ModelFailure`` subclass when no answer can be had."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]: ...


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    id: str
    name: str
    provider: str
    supports_images: bool = False
    context_window: int = 8192
    # The image types the model's provider takes (Gemini takes no GIF, Ollama no GIF).
    image_types: frozenset[str] = frozenset({"image/png", "image/jpeg", "image/webp"})

    def takes_image(self, mime_type: str) -> bool:
        return self.supports_images and mime_type in self.image_types


@dataclass(frozen=True, kw_only=True)
class FetchedImage:
    mime_type: str
    data_uri: str


class ImageInspector(Protocol):
    async def fetch(self, image_url: str) -> FetchedImage:
        """The image, fetched once: raise InvalidInput on "image_url" unless it is an
        acceptable image (an http(s) URL of a public host answering with an image within
        the limits, or a data: URI of one)."""
        ...


class ModelCatalog(Protocol):
    @property
    def default_model(self) -> str: ...

    def get(self, model_id: str) -> ModelInfo | None:
        """The model if it is configured and usable now."""
        ...

    def available(self) -> list[ModelInfo]: ...
