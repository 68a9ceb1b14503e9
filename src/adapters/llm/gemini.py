"""Google Gemini REST (``generateContent`` and ``streamGenerateContent?alt=sse``).

Roles are user/model, the system prompt travels as ``systemInstruction``, sampling as
``generationConfig``; images inline (``data:`` URIs: Parley fetched them when they were
sent). Gemini refuses an empty text part (400 "required oneof field 'data'"), so none is
ever sent. Usage comes from ``usageMetadata`` (in a stream, the last chunk's is the
total); thinking tokens (``thoughtsTokenCount``) are billed as output, so they count in
``completion_tokens``. Thought parts (``"thought": true``) are reasoning, not answer. A
safety block (``finishReason`` SAFETY and kin, or ``promptFeedback.blockReason``) is
finish reason ``content_filter``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
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

# Gemini's finish reasons in the vocabulary OpenAI-style clients know; others are kept,
# lower-cased, so they are visible.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": CONTENT_FILTER,
    "RECITATION": CONTENT_FILTER,
    "BLOCKLIST": CONTENT_FILTER,
    "PROHIBITED_CONTENT": CONTENT_FILTER,
    "SPII": CONTENT_FILTER,
    "IMAGE_SAFETY": CONTENT_FILTER,
}


@dataclass(frozen=True)
class _Piece:
    text: str = ""
    thought: str = ""
    finish: str | None = None


def _parts(turn: ChatTurn) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if turn.content:
        parts.append({"text": turn.content})
    if turn.image_url and turn.image_url.startswith("data:"):
        header, _, data = turn.image_url[5:].partition(",")
        parts.append({"inline_data": {"mime_type": header.partition(";")[0], "data": data}})
    return parts


class GeminiClient:
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
        self._base = base_url.rstrip("/") + "/v1beta/models/"
        self._key = api_key
        self._dialect = dialect or Dialect()
        headers = {"x-goog-api-key": api_key, "Content-Type": "application/json"}
        self._endpoint = Endpoint(name, http, headers, api_key)

    def _body(self, model: UpstreamModel, request: ChatRequest) -> dict[str, Any]:
        contents: list[dict[str, Any]] = []
        system = [turn.content for turn in request.messages if turn.role == "system"]
        for turn in request.messages:
            parts = _parts(turn)
            if turn.role == "system" or not parts:
                continue
            role = "model" if turn.role == "assistant" else "user"
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)  # Gemini wants turns to alternate
            else:
                contents.append({"role": role, "parts": parts})
        config: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
        temperature = self._dialect.temperature(model, request.temperature)
        if temperature is not None:
            config["temperature"] = temperature
            if request.top_p is not None:
                config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if any(system):
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(filter(None, system))}]}
        return body

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion:
        document = await self._endpoint.post_json(
            f"{self._base}{model.name}:generateContent", self._body(model, request)
        )
        piece = self._piece(document)
        return ChatCompletion(
            text=piece.text,
            model=model.name,
            provider=self.name,
            usage=_usage(document) or TokenUsage(),
            finish_reason=piece.finish or "stop",
            reasoning=piece.thought,
        )

    async def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        url = f"{self._base}{model.name}:streamGenerateContent"
        usage: TokenUsage | None = None
        finish: str | None = None
        try:
            lines = self._endpoint.data_lines(url, self._body(model, request), {"alt": "sse"})
            async with aclosing(lines) as payloads:
                async for payload in payloads:
                    chunk = self._endpoint.decoded(payload, "a stream chunk")
                    piece = self._piece(chunk)
                    usage = _usage(chunk) or usage
                    finish = piece.finish or finish
                    if piece.text or piece.thought:
                        yield ChatDelta(text=piece.text, reasoning=piece.thought)
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if finish is None:
            # Gemini streams end without a [DONE] marker; a finishReason is what tells a
            # complete answer from a dropped connection.
            raise UpstreamFailure(
                FailureKind.TRANSPORT, self.name, "the stream ended before it was complete"
            )
        yield ChatDelta(
            usage=usage or TokenUsage(), finish_reason=finish, model=model.name, provider=self.name
        )

    def _piece(self, document: Any) -> _Piece:
        if not isinstance(document, dict):
            raise malformed(self.name, "not an object")
        if "error" in document:
            raise from_stream_error(self.name, document["error"], self._key)
        candidates = document.get("candidates")
        if not candidates:
            if (document.get("promptFeedback") or {}).get("blockReason"):
                return _Piece(finish=CONTENT_FILTER)  # the prompt itself was blocked
            if "usageMetadata" in document:
                return _Piece()  # a usage-only chunk
            raise malformed(self.name, "no candidates")
        try:
            candidate = candidates[0]
            parts = (candidate.get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
            thought = "".join(p.get("text", "") for p in parts if p.get("thought"))
            finish = normalised_finish(candidate.get("finishReason"), FINISH_REASONS)
        except (AttributeError, TypeError, IndexError):
            raise malformed(self.name, "unexpected candidate shape") from None
        return _Piece(text=text, thought=thought, finish=finish)


def _usage(document: dict[str, Any]) -> TokenUsage | None:
    metadata = document.get("usageMetadata")
    if not isinstance(metadata, dict):
        return None
    prompt = metadata.get("promptTokenCount", 0)
    answer = metadata.get("candidatesTokenCount", 0)
    thoughts = metadata.get("thoughtsTokenCount", 0)
    if not all(isinstance(count, int) for count in (prompt, answer, thoughts)):
        return None
    return TokenUsage(
        prompt_tokens=prompt, completion_tokens=answer + thoughts, reasoning_tokens=thoughts
    )
