"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``).

Serves OpenAI, Moonshot Kimi, DashScope compatible mode (Qwen), DeepSeek and local
servers such as Ollama, vLLM and llama.cpp; each one's quirks are its ``Dialect``.

What the servers send beyond OpenAI's own shape, and how it is read:
- a refusal (OpenAI): ``message.content`` null and ``message.refusal`` text (streamed as
  ``delta.refusal``): the refusal is the answer, finish reason ``refusal``;
- reasoning text (DeepSeek, Qwen, Kimi): ``reasoning_content`` beside ``content``, kept
  apart from the answer; reasoning tokens (OpenAI) in
  ``usage.completion_tokens_details.reasoning_tokens``, part of ``completion_tokens``;
- stream usage in ``choices[0].usage`` (Moonshot) instead of a final usage chunk;
- an error inside a 200 stream: ``data: {"error": {...}}``;
- a stream that finishes (``finish_reason``) but never sends ``[DONE]`` (some llama.cpp
  builds): a complete answer."""

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
)
from application.ports import (
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    ChatTurn,
    TokenUsage,
    ToolCall,
    ToolCallPiece,
)


def _message(turn: ChatTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.image_url is not None:
        message["content"] = [
            {"type": "text", "text": turn.content},
            {"type": "image_url", "image_url": {"url": turn.image_url}},
        ]
    if turn.tool_calls:
        message["content"] = turn.content or None
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in turn.tool_calls
        ]
    if turn.tool_call_id is not None:
        message["tool_call_id"] = turn.tool_call_id
    return message


def _options(request: ChatRequest) -> dict[str, Any]:
    """What only a caller of Parley's OpenAI-compatible endpoint asks for, in OpenAI's
    own names (the client wrote them so)."""
    options: dict[str, Any] = {}
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.stop:
        options["stop"] = list(request.stop)
    if request.tools is not None:
        options["tools"] = [dict(tool) for tool in request.tools.tools]
        if request.tools.choice is not None:
            choice = request.tools.choice
            options["tool_choice"] = choice if isinstance(choice, str) else dict(choice)
    if request.response_format is not None:
        options["response_format"] = dict(request.response_format)
    return options


def _tool_calls(raw: Any, provider: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    try:
        return tuple(
            ToolCall(
                id=str(call["id"]),
                name=str(call["function"]["name"]),
                arguments=str(call["function"].get("arguments") or ""),
            )
            for call in raw
        )
    except (KeyError, TypeError, AttributeError):
        raise malformed(provider, "a tool call has no id or function name") from None


def _tool_call_pieces(raw: Any, provider: str) -> tuple[ToolCallPiece, ...]:
    if raw is None:
        return ()
    try:
        pieces = []
        for call in raw:
            function = call.get("function") or {}
            pieces.append(
                ToolCallPiece(
                    index=int(call.get("index", 0)),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=str(function.get("arguments") or ""),
                )
            )
        return tuple(pieces)
    except (TypeError, AttributeError, ValueError):
        raise malformed(provider, "a streamed tool call is not an object") from None


def _usage(raw: Any) -> TokenUsage | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens", 0), raw.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = raw.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else 0,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OpenAICompatibleClient:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        dialect: Dialect | None = None,
    ) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._key = api_key
        self._dialect = dialect or Dialect()
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._endpoint = Endpoint(name, http, headers, api_key)

    def _body(self, model: UpstreamModel, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model.name,
            "messages": [_message(turn) for turn in request.messages],
            self._dialect.max_tokens_field: request.max_tokens,
        }
        temperature = self._dialect.temperature(model, request.temperature)
        if temperature is not None:
            body["temperature"] = temperature
        body.update(_options(request))
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        else:
            body.update(self._dialect.non_stream_extra)
        return body

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion:
        document = await self._endpoint.post_json(
            self._url, self._body(model, request, stream=False)
        )
        if isinstance(document, dict) and "error" in document and not document.get("choices"):
            raise from_stream_error(self.name, document["error"], self._key)
        try:
            choice = document["choices"][0]
            message = choice["message"]
            content, refusal = message.get("content"), message.get("refusal")
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError):
            raise malformed(self.name, "no choices[0].message") from None
        if content is not None and not isinstance(content, str):
            raise malformed(self.name, "message content is not text")
        text = content or ""
        tool_calls = _tool_calls(message.get("tool_calls"), self.name)
        if not text and isinstance(refusal, str) and refusal:
            text, finish = refusal, "refusal"
        return ChatCompletion(
            text=text,
            model=model.name,
            provider=self.name,
            usage=_usage(document.get("usage")) or _usage(choice.get("usage")) or TokenUsage(),
            finish_reason=str(finish),
            reasoning=_text(message.get("reasoning_content")),
            tool_calls=tool_calls,
        )

    async def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        body = self._body(model, request, stream=True)
        state = _StreamState(self.name, self._key)
        done = False
        try:
            async with aclosing(self._endpoint.data_lines(self._url, body)) as payloads:
                async for payload in payloads:
                    if payload == "[DONE]":
                        done = True
                        break
                    for delta in state.read(self._endpoint.decoded(payload, "a stream chunk")):
                        yield delta
        except httpx.TransportError as error:
            if state.finish is None:
                raise from_transport(self.name, error) from None
            # Finished, then the connection went (no [DONE]): the answer is complete.
        if not done and state.finish is None:
            raise UpstreamFailure(
                FailureKind.TRANSPORT, self.name, "the stream ended before it was complete"
            )
        yield ChatDelta(
            usage=state.usage or TokenUsage(),
            finish_reason="refusal" if state.refused else (state.finish or "stop"),
            model=model.name,
            provider=self.name,
        )


class _StreamState:
    """What a stream's chunks have said so far, and the deltas each one adds."""

    def __init__(self, provider: str, secret: str) -> None:
        self._provider = provider
        self._secret = secret
        self.usage: TokenUsage | None = None
        self.finish: str | None = None
        self.refused = False

    def read(self, chunk: dict[str, Any]) -> list[ChatDelta]:
        if "error" in chunk:
            raise from_stream_error(self._provider, chunk["error"], self._secret)
        self.usage = _usage(chunk.get("usage")) or self.usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise malformed(self._provider, "a stream chunk has no choices list")
        deltas: list[ChatDelta] = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise malformed(self._provider, "a stream choice is not an object")
            delta = choice.get("delta") or {}
            reasoning = _text(delta.get("reasoning_content"))
            if reasoning:
                deltas.append(ChatDelta(reasoning=reasoning))
            piece = _text(delta.get("content"))
            refusal = _text(delta.get("refusal"))
            if refusal:
                self.refused, piece = True, piece + refusal
            if piece:
                deltas.append(ChatDelta(text=piece))
            calls = _tool_call_pieces(delta.get("tool_calls"), self._provider)
            if calls:
                deltas.append(ChatDelta(tool_calls=calls))
            self.usage = _usage(choice.get("usage")) or self.usage  # Moonshot
            self.finish = choice.get("finish_reason") or self.finish
        return deltas
