"""Google Gemini REST (``generateContent`` and ``streamGenerateContent?alt=sse``).

Roles are user/model, the system prompt travels as ``systemInstruction``, sampling as
``generationConfig``; images are sent inline (downloaded by Parley within limits).
Usage comes from ``usageMetadata`` (in a stream, the last chunk's is the total)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from adapters.llm.images import ImageFetcher
from adapters.llm.upstream import (
    FailureKind,
    UpstreamFailure,
    from_status,
    from_transport,
    malformed,
)
from application.ports import ChatCompletion, ChatDelta, ChatRequest, TokenUsage

# Gemini's finish reasons, in the vocabulary OpenAI-style clients know; others
# (SAFETY, RECITATION, BLOCKLIST, ...) are kept, lower-cased, so they are visible.
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}


def _finish(reason: str) -> str:
    return FINISH_REASONS.get(reason, reason.lower())


class GeminiClient:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        images: ImageFetcher,
    ) -> None:
        self.name = name
        self._base = base_url.rstrip("/") + "/v1beta/models/"
        self._key = api_key
        self._http = http
        self._images = images
        # msgspec for bodies, as in openai_compatible.py.
        self._headers = {"x-goog-api-key": api_key, "Content-Type": "application/json"}

    async def _body(self, request: ChatRequest) -> dict[str, Any]:
        contents: list[dict[str, Any]] = []
        system = [turn.content for turn in request.messages if turn.role == "system"]
        for turn in request.messages:
            if turn.role == "system":
                continue
            role = "model" if turn.role == "assistant" else "user"
            parts: list[dict[str, Any]] = [{"text": turn.content}]
            if turn.image_url:
                mime, data = await self._images.load(turn.image_url)
                parts.append(
                    {"inline_data": {"mime_type": mime, "data": base64.b64encode(data).decode()}}
                )
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)  # Gemini wants turns to alternate
            else:
                contents.append({"role": role, "parts": parts})
        body: dict[str, Any] = {
            "contents": contents,
            "generationConfig": {
                "temperature": request.temperature,
                "maxOutputTokens": request.max_tokens,
            },
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        return body

    async def complete(self, upstream_model: str, request: ChatRequest) -> ChatCompletion:
        body = await self._body(request)
        try:
            response = await self._http.post(
                f"{self._base}{upstream_model}:generateContent",
                content=msgspec.json.encode(body),
                headers=self._headers,
            )
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if response.status_code != 200:
            raise from_status(self.name, response, response.text, self._key)
        try:
            document = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise malformed(self.name, "body is not JSON") from None
        text, finish = _candidate(self.name, document)
        return ChatCompletion(
            text=text,
            model=upstream_model,
            provider=self.name,
            usage=_usage(document) or TokenUsage(),
            finish_reason=_finish(finish or "STOP"),
        )

    async def stream(self, upstream_model: str, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        body = await self._body(request)
        url = f"{self._base}{upstream_model}:streamGenerateContent"
        usage: TokenUsage | None = None
        finish: str | None = None
        try:
            async with self._http.stream(
                "POST",
                url,
                params={"alt": "sse"},
                content=msgspec.json.encode(body),
                headers=self._headers,
            ) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace")
                    raise from_status(self.name, response, text, self._key)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    try:
                        chunk = msgspec.json.decode(line[5:].strip())
                    except msgspec.DecodeError:
                        raise malformed(self.name, "a stream chunk is not JSON") from None
                    text, chunk_finish = _candidate(self.name, chunk)
                    usage = _usage(chunk) or usage
                    finish = chunk_finish or finish
                    if text:
                        yield ChatDelta(text=text)
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if finish is None:
            # Gemini streams end without a [DONE] marker; a finishReason is what tells a
            # complete answer from a dropped connection.
            raise UpstreamFailure(
                FailureKind.TRANSPORT, self.name, "the stream ended before it was complete"
            )
        yield ChatDelta(
            usage=usage or TokenUsage(),
            finish_reason=_finish(finish),
            model=upstream_model,
            provider=self.name,
        )


def _candidate(provider: str, document: Any) -> tuple[str, str | None]:
    if not isinstance(document, dict):
        raise malformed(provider, "not an object")
    candidates = document.get("candidates")
    if not candidates:
        blocked = (document.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            return "", str(blocked)
        if "usageMetadata" in document:
            return "", None  # a usage-only chunk
        raise malformed(provider, "no candidates")
    try:
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(part.get("text", "") for part in parts if isinstance(part, dict))
        finish = candidate.get("finishReason")
    except (AttributeError, TypeError, IndexError):
        raise malformed(provider, "unexpected candidate shape") from None
    return text, finish


def _usage(document: dict[str, Any]) -> TokenUsage | None:
    metadata = document.get("usageMetadata")
    if not isinstance(metadata, dict):
        return None
    prompt = metadata.get("promptTokenCount", 0)
    completion = metadata.get("candidatesTokenCount", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
