"""What the wire formats (``wire_openai``, ``wire_gemini``, ``wire_anthropic``) share: the
recorded request, the validated call, the answer to render, and small helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tests.fakes.provider_models import ModelInfo

__all__ = [
    "OPENAI_FLAVOURS",
    "Answer",
    "AnswerKind",
    "Call",
    "FunctionCall",
    "HttpError",
    "Lookup",
    "RecordedRequest",
    "Rejected",
    "StreamPlan",
    "Wire",
    "dumps",
    "flavour_of",
    "header_items",
    "pieces",
    "words",
]

# OpenAI-compatible flavours served under /{name}/v1/...; "openai" itself is at /v1/...
OPENAI_FLAVOURS = ("openai", "moonshot", "dashscope", "deepseek", "ollama", "vllm")
GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
_PIECES = re.compile(r"\s*\S+|\s+$")


def flavour_of(path: str, headers: dict[str, str] | None = None) -> str | None:
    if path.startswith("/v1beta/") or GEMINI_PATH.match(path):
        return "gemini"
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "anthropic"
    if path.startswith("/v1/"):
        if path == "/v1/models" and headers and "anthropic-version" in headers:
            return "anthropic"
        return "openai"
    head, _, rest = path.lstrip("/").partition("/")
    if head in OPENAI_FLAVOURS and rest.startswith("v1/"):
        return head
    return None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    json: Any  # parsed body, or None when empty or not JSON
    body: bytes

    @property
    def provider(self) -> str | None:
        """The flavour the path belongs to: "openai", "moonshot", "dashscope", "deepseek",
        "ollama", "vllm", "gemini" or "anthropic" (None for unknown paths)."""
        return flavour_of(self.path, self.headers)


@dataclass(slots=True)
class Call:
    """One validated chat request, in a provider-neutral form."""

    flavour: str
    model: str
    stream: bool
    last_user_text: str
    prompt_words: int
    response_id: str
    include_usage: bool = False  # OpenAI stream_options.include_usage
    sse: bool = True  # Gemini: alt=sse; otherwise a streamed JSON array
    show_reasoning: bool = True  # Gemini includeThoughts; DashScope enable_thinking
    tools: tuple[str, ...] = ()  # OpenAI wire: the names of the request's function tools
    forced_tool: str | None = None  # the function tool_choice forces ("required": the first)
    json_mode: bool = False  # OpenAI wire: response_format json_object / json_schema


AnswerKind = Literal["text", "refusal", "safety", "prompt_block", "tool_calls"]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One tool call of an answer (OpenAI ``tool_calls[i]``)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What to render: visible text and its token count, reasoning and its token count."""

    kind: AnswerKind
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish: str
    reasoning: str | None = None
    reasoning_tokens: int = 0
    block_reason: str = "SAFETY"
    tool_calls: tuple[FunctionCall, ...] = ()  # kind "tool_calls"


@dataclass(frozen=True, slots=True)
class HttpError:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


class Rejected(Exception):
    """A request the provider refuses (auth or validation): answer ``error`` and stop."""

    def __init__(self, error: HttpError) -> None:
        super().__init__(error.status)
        self.error = error


@dataclass(frozen=True, slots=True)
class StreamPlan:
    events: list[bytes]
    body_events: int  # events before the finishing one (a cut stream never sends it)
    terminator: int = 0  # trailing events a NoDone stream leaves out ([DONE])
    prefix: int = 0  # leading events before the first content chunk (role chunk, block start)


Lookup = Callable[[str, str], ModelInfo | None]


class Wire(Protocol):
    """One wire format; methods take the flavour from ``call`` (or as an argument)."""

    not_json: bytes

    def authorise(self, flavour: str, request: RecordedRequest, api_key: str | None) -> None: ...

    def parse(
        self, flavour: str, request: RecordedRequest, lookup: Lookup, serial: int, **extra: str
    ) -> Call: ...

    def completion(self, call: Call, answer: Answer) -> bytes: ...

    def stream(self, call: Call, answer: Answer) -> StreamPlan: ...

    def http_error(
        self,
        flavour: str,
        status: int,
        message: str | None,
        code: str | None = None,
        *,
        model: str = "",
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        retry_delay: str | None = None,
    ) -> HttpError: ...

    def quota_exhausted(self, call: Call) -> HttpError: ...

    def overloaded(self, call: Call) -> HttpError: ...

    def stream_error_event(self, call: Call, message: str | None, kind: str) -> bytes: ...

    def stream_error_http(self, call: Call, message: str | None, kind: str) -> HttpError: ...

    def malformed(self, call: Call, payload: bytes) -> tuple[bytes, list[bytes]]: ...


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def words(text: str) -> int:
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECES.findall(text)


def header_items(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.encode(), v.encode()) for k, v in headers.items())


def retry_headers(
    retry_after: float | str | None, retry_after_ms: int | None = None
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if retry_after is not None:
        value = retry_after
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        headers["Retry-After"] = str(value)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return headers


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def show(value: Any) -> str:
    """A request value as an API echoes it back in messages (``0.2``, ``3``, ``'x'``)."""
    return json.dumps(value) if not isinstance(value, str) else value
