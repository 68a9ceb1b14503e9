"""Anthropic's Messages API (``POST {base_url}/v1/messages``).

The system prompt is the top-level ``system``; ``max_tokens`` is required; turns are
user/assistant (consecutive turns of one role are merged); images travel as base64
content blocks. Temperature is 0-1 (clamped), and none is sent to models that take only
their default (Claude 4.7 and later). A stream is a sequence of events: ``message_start``
(input usage), ``content_block_start``/``_delta``/``_stop`` (``text_delta`` is answer,
``thinking_delta`` reasoning), ``message_delta`` (``stop_reason``, output usage),
``message_stop``, ``ping``, and ``error`` (e.g. ``overloaded_error``) at any point.
``stop_reason`` "refusal" (the safety classifiers stopped the answer) is finish reason
``content_filter``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from adapters.llm.endpoint import Endpoint
from adapters.llm.upstream import (
    Dialect,
    FailureKind,
    UpstreamFailure,
    UpstreamModel,
    from_stream_error,
    from_transport,
    malformed,
    normalised_finish,
)
from application.ports import (
    CONTENT_FILTER,
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    ChatTurn,
    TokenUsage,
)

API_VERSION = "2023-06-01"
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": CONTENT_FILTER,
    "tool_use": "tool_calls",
    "pause_turn": "pause_turn",
}
ANTHROPIC_DIALECT = Dialect(temperature_max=1.0)


def _blocks(turn: ChatTurn) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.image_url and turn.image_url.startswith("data:"):
        header, _, data = turn.image_url[5:].partition(",")
        media_type = header.partition(";")[0]
        blocks.append(
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        )
    if turn.content:
        blocks.append({"type": "text", "text": turn.content})
    return blocks


def _usage(raw: Any, prompt: int = 0) -> TokenUsage:
    if not isinstance(raw, dict):
        return TokenUsage(prompt_tokens=prompt)
    # Cached prompt tokens are billed too (at other rates): they are prompt tokens.
    inputs = sum(
        value
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if isinstance(value := raw.get(key), int)
    )
    output = raw.get("output_tokens")
    return TokenUsage(
        prompt_tokens=inputs or prompt,
        completion_tokens=output if isinstance(output, int) else 0,
    )


class AnthropicClient:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        dialect: Dialect = ANTHROPIC_DIALECT,
    ) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._key = api_key
        self._dialect = dialect
        headers = {
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "Content-Type": "application/json",
        }
        self._endpoint = Endpoint(name, http, headers, api_key)

    def _body(self, model: UpstreamModel, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        system = [t.content for t in request.messages if t.role == "system" and t.content]
        for turn in request.messages:
            blocks = _blocks(turn)
            if turn.role == "system" or not blocks:
                continue
            if messages and messages[-1]["role"] == turn.role:
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": turn.role, "content": blocks})
        body: dict[str, Any] = {
            "model": model.name,
            "max_tokens": request.max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = "\n\n".join(system)
        temperature = self._dialect.temperature(model, request.temperature)
        if temperature is not None and request.top_p is not None:
            # Claude 4.5 and later take temperature or top_p, not both: a caller who
            # asked for top_p gets it, and the provider's default temperature.
            body["top_p"] = request.top_p
        elif temperature is not None:
            body["temperature"] = temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if stream:
            body["stream"] = True
        return body

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion:
        document = await self._endpoint.post_json(
            self._url, self._body(model, request, stream=False)
        )
        try:
            blocks = document["content"]
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            thinking = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
            stop = normalised_finish(document.get("stop_reason") or "end_turn", STOP_REASONS)
        except (KeyError, TypeError, AttributeError):
            raise malformed(self.name, "no content blocks") from None
        return ChatCompletion(
            text=text,
            model=model.name,
            provider=self.name,
            usage=_usage(document.get("usage")),
            finish_reason=stop or "stop",
            reasoning=thinking,
        )

    async def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        body = self._body(model, request, stream=True)
        prompt_tokens = 0
        usage: TokenUsage | None = None
        stop: str | None = None
        finished = False
        try:
            # "event:" lines repeat the data's own "type": the data lines are enough.
            async with aclosing(self._endpoint.data_lines(self._url, body)) as payloads:
                async for payload in payloads:
                    event = self._endpoint.decoded(payload, "a stream event")
                    kind = event.get("type")
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield ChatDelta(text=str(delta["text"]))
                        elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                            yield ChatDelta(reasoning=str(delta["thinking"]))
                    elif kind == "message_start":
                        started = _usage((event.get("message") or {}).get("usage"))
                        prompt_tokens = started.prompt_tokens
                    elif kind == "message_delta":
                        reason = (event.get("delta") or {}).get("stop_reason")
                        stop = normalised_finish(reason, STOP_REASONS) or stop
                        usage = _usage(event.get("usage"), prompt_tokens)
                    elif kind == "message_stop":
                        finished = True
                        break
                    elif kind == "error":
                        raise from_stream_error(self.name, event.get("error"), self._key)
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if not finished:
            raise UpstreamFailure(
                FailureKind.TRANSPORT, self.name, "the stream ended before it was complete"
            )
        yield ChatDelta(
            usage=usage or TokenUsage(prompt_tokens=prompt_tokens),
            finish_reason=stop or "stop",
            model=model.name,
            provider=self.name,
        )
