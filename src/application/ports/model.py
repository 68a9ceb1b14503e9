"""The chat model port and what travels through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from domain.budgets import Price

ChatRole = Literal["system", "user", "assistant", "tool"]

# A JSON object as the client wrote it (a tool's definition, a response format): Parley
# passes these through to the providers that take them, in OpenAI's shape, which is the
# shape every OpenAI-compatible server takes.
JsonObject = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A function call the model asks the client to make; ``arguments`` is the JSON text
    the model wrote (it may not parse: the client decides)."""

    id: str
    name: str
    arguments: str


# Not frozen (see ``EarlierMessage``): a request carries one per message of its history.
@dataclass(slots=True, kw_only=True)
class ChatTurn:
    """``image_url`` is always a ``data:`` URI: images are fetched once, when sent. An
    assistant turn may carry the ``tool_calls`` it made; a ``tool`` turn is the result of
    the call ``tool_call_id``."""

    role: ChatRole
    content: str
    image_url: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolUse:
    """The tools a request offers the model and how it may use them (OpenAI's shapes)."""

    tools: tuple[JsonObject, ...]
    choice: str | JsonObject | None = None


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """``top_p``, ``stop``, ``tools`` and ``response_format`` are only what a caller of
    the OpenAI-compatible endpoint asked for; None and empty mean "the provider's
    default" and are not sent."""

    model: str
    messages: Sequence[ChatTurn]
    temperature: float
    max_tokens: int
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: ToolUse | None = None
    response_format: JsonObject | None = None
    # The models the caller may use (None: any): a fallback outside them is not tried.
    permitted_models: frozenset[str] | None = None


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
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ToolCallPiece:
    """Part of a streamed tool call: the first piece of call ``index`` has its ``id``
    and ``name``, later ones more of its ``arguments``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


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
    tool_calls: tuple[ToolCallPiece, ...] = ()


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
    # Whether tools (function calling) and ``response_format`` reach the model: Parley
    # passes them on the OpenAI wire format only.
    supports_tools: bool = False
    # What the operator says the model costs (TOML ``input_price``/``output_price``).
    price: Price | None = None

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
