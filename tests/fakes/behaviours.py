"""What the fake provider does for one chat request: the behaviours tests script.

``server.script(error(429, retry_after=1), reply("hi"), refusal(), ...)`` queues them, one per
chat request that passed authentication and validation; ``server.default`` applies after.
Every behaviour is rendered in the wire format of the endpoint that was hit (``tool_call`` /
``tool_calls`` on the OpenAI-compatible wire only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BEHAVIOUR_TYPES",
    "Behaviour",
    "CutStream",
    "Delay",
    "Error",
    "Malformed",
    "NoDone",
    "Overloaded",
    "PromptBlock",
    "QuotaExhausted",
    "Refusal",
    "Reply",
    "Reset",
    "SafetyBlock",
    "StreamError",
    "ToolCall",
    "ToolCalls",
    "cut_stream",
    "delay",
    "echo",
    "error",
    "malformed",
    "no_done",
    "overloaded",
    "prompt_block",
    "quota_exhausted",
    "refusal",
    "reply",
    "reset",
    "safety_block",
    "slow_stream",
    "stream_error",
    "tool_call",
    "tool_calls",
]

StreamErrorKind = Literal["server_error", "overloaded", "rate_limit"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer. ``text=None`` echoes the last user message (the default reply).

    ``finish_reason`` is given in either vocabulary and translated per endpoint
    (``stop``<->``STOP``<->``end_turn``, ``length``<->``MAX_TOKENS``<->``max_tokens``,
    ``content_filter``<->``SAFETY``<->``refusal``); anything else is passed through verbatim.
    ``chunk_delay`` sleeps before each streamed chunk (non-streaming requests sleep the same
    total before answering).

    ``reasoning`` is the model's thinking, shown the flavour's way (``reasoning_content``,
    Gemini ``thought`` parts when ``includeThoughts``, an Anthropic ``thinking`` block, or only
    counted, for OpenAI). ``reasoning_tokens`` defaults to its word count. ``completion_tokens``
    counts the visible answer only; each flavour adds the reasoning tokens where it does."""

    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    chunk_delay: float = 0.0
    reasoning: str | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Error:
    """An HTTP error with the provider's error body for the endpoint hit.

    ``code`` overrides OpenAI's ``error.code``, Google's ``error.status`` or Anthropic's
    ``error.type``. ``retry_after`` sends ``Retry-After``; ``retry_after_ms`` OpenAI's
    ``retry-after-ms``; ``retry_delay`` (e.g. ``"37s"``) Gemini's ``RetryInfo`` detail (with a
    ``QuotaFailure``) in the body, the way Google says when to retry."""

    status: int
    message: str | None = None
    retry_after: float | str | None = None
    code: str | None = None
    retry_after_ms: int | None = None
    retry_delay: str | None = None


@dataclass(frozen=True, slots=True)
class Delay:
    """Sleep ``seconds`` before answering, then behave as ``then`` (default: the echo reply).
    If the client gave up meanwhile, the connection is simply closed."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort the TCP connection (SO_LINGER 0, so an RST) without sending any response."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """HTTP 200 with a bad body: ``kind="json"`` is not JSON at all, ``kind="shape"`` is valid
    JSON of the wrong shape. For streaming requests the bad payload is sent as one SSE event
    (followed by ``[DONE]`` on the OpenAI endpoint). ``body`` replaces the payload verbatim."""

    kind: Literal["json", "shape"] = "json"
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class CutStream:
    """For streaming requests: 200, ``after_chunks`` data chunks, then the connection drops
    (a FIN, or an RST with ``abort=True``) without the final chunk, terminator or ``[DONE]``.
    ``after_chunks`` is capped so the finishing chunk is never sent. Non-streaming requests
    are reset as with ``Reset``."""

    after_chunks: int = 2
    abort: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """The model declines: OpenAI ``message.refusal`` (stream: ``delta.refusal``); Anthropic
    ``stop_reason: "refusal"``; Gemini a SAFETY-blocked candidate. Flavours without a refusal
    field (Moonshot, DashScope, DeepSeek, Ollama, vLLM) answer ``text`` as plain content."""

    text: str = "I'm sorry, I can't help with that."


@dataclass(frozen=True, slots=True)
class SafetyBlock:
    """The answer is filtered: Gemini finishReason SAFETY with safetyRatings and no content;
    OpenAI-compatible ``finish_reason: "content_filter"`` with ``content: null``; Anthropic
    ``stop_reason: "refusal"``."""


@dataclass(frozen=True, slots=True)
class PromptBlock:
    """The prompt is blocked: Gemini ``promptFeedback.blockReason`` and no candidates (HTTP
    200); the other formats answer as for ``SafetyBlock``."""

    reason: str = "SAFETY"


@dataclass(frozen=True, slots=True)
class StreamError:
    """A 200 stream with ``after_chunks`` content chunks, then the provider's mid-stream error
    event, then the connection closes (no ``[DONE]``). Non-streaming requests get the
    equivalent HTTP error. ``kind``: ``server_error``, ``overloaded`` or ``rate_limit``."""

    after_chunks: int = 1
    message: str | None = None
    kind: StreamErrorKind = "server_error"


@dataclass(frozen=True, slots=True)
class QuotaExhausted:
    """The billing failure: OpenAI 429 ``insufficient_quota``; Gemini 429 RESOURCE_EXHAUSTED
    with a per-day QuotaFailure and no RetryInfo; Anthropic 400 "credit balance is too low";
    Moonshot/DashScope/DeepSeek their own."""


@dataclass(frozen=True, slots=True)
class Overloaded:
    """Anthropic 529 ``overloaded_error``; Gemini 503 UNAVAILABLE; OpenAI-compatible 503."""


@dataclass(frozen=True, slots=True)
class NoDone:
    """An OpenAI-compatible stream that sends the finishing chunk and closes cleanly without
    ``data: [DONE]`` (some llama.cpp forks do). Other formats: a normal stream."""

    text: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model calls a function instead of answering (OpenAI-compatible wire only).

    ``name=None`` calls the function ``tool_choice`` names, else the request's first tool;
    ``arguments`` is the JSON text sent as ``function.arguments`` (verbatim, even when it is
    not valid JSON, as a model may emit); ``call_id`` defaults to ``call_<serial>_<index>``.
    The answer has ``content: null``, ``tool_calls: [...]`` and ``finish_reason:
    "tool_calls"``; a stream sends the call's id and name first, then the arguments in
    pieces. Gemini and Anthropic requests scripted with it are a bug in the test (recorded in
    ``server.errors``): Parley sends tools to OpenAI-wire models only."""

    name: str | None = None
    arguments: str = "{}"
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """Several (parallel) tool calls in one answer, in order (``tool_calls[i].index == i``)."""

    calls: tuple[ToolCall, ...]


Behaviour = (
    Reply
    | Error
    | Delay
    | Reset
    | Malformed
    | CutStream
    | Refusal
    | SafetyBlock
    | PromptBlock
    | StreamError
    | QuotaExhausted
    | Overloaded
    | NoDone
    | ToolCall
    | ToolCalls
)
BEHAVIOUR_TYPES = (
    Reply,
    Error,
    Delay,
    Reset,
    Malformed,
    CutStream,
    Refusal,
    SafetyBlock,
    PromptBlock,
    StreamError,
    QuotaExhausted,
    Overloaded,
    NoDone,
    ToolCall,
    ToolCalls,
)


def reply(
    text: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
    *,
    reasoning: str | None = None,
    reasoning_tokens: int | None = None,
) -> Reply:
    return Reply(
        text,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        reasoning=reasoning,
        reasoning_tokens=reasoning_tokens,
    )


def echo() -> Reply:
    return Reply()


def error(
    status: int,
    message: str | None = None,
    retry_after: float | str | None = None,
    *,
    code: str | None = None,
    retry_after_ms: int | None = None,
    retry_delay: str | None = None,
) -> Error:
    return Error(status, message, retry_after, code, retry_after_ms, retry_delay)


def delay(seconds: float, then: Behaviour | None = None) -> Delay:
    return Delay(seconds, then)


def reset() -> Reset:
    return Reset()


def malformed(kind: Literal["json", "shape"] = "json", body: bytes | None = None) -> Malformed:
    return Malformed(kind, body)


def cut_stream(after_chunks: int = 2, *, abort: bool = False) -> CutStream:
    return CutStream(after_chunks, abort)


def slow_stream(chunk_delay: float, text: str | None = None) -> Reply:
    return Reply(text, chunk_delay=chunk_delay)


def refusal(text: str = "I'm sorry, I can't help with that.") -> Refusal:
    return Refusal(text)


def safety_block() -> SafetyBlock:
    return SafetyBlock()


def prompt_block(reason: str = "SAFETY") -> PromptBlock:
    return PromptBlock(reason)


def stream_error(
    after_chunks: int = 1, message: str | None = None, kind: StreamErrorKind = "server_error"
) -> StreamError:
    return StreamError(after_chunks, message, kind)


def quota_exhausted() -> QuotaExhausted:
    return QuotaExhausted()


def overloaded() -> Overloaded:
    return Overloaded()


def no_done(text: str | None = None) -> NoDone:
    return NoDone(text)


def tool_call(
    name: str | None = None, arguments: str = "{}", *, call_id: str | None = None
) -> ToolCall:
    """``tool_call("get_weather", '{"city": "Paris"}')``; see ``ToolCall``."""
    return ToolCall(name, arguments, call_id)


def tool_calls(*calls: ToolCall) -> ToolCalls:
    """``tool_calls(tool_call("a"), tool_call("b", '{"x": 1}'))``: parallel calls."""
    if not calls:
        raise ValueError("tool_calls() needs at least one tool_call()")
    return ToolCalls(tuple(calls))
