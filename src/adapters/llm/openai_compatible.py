"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``).

Serves OpenAI, Moonshot Kimi, DashScope compatible mode (Qwen), DeepSeek and local
servers such as Ollama, vLLM and llama.cpp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from adapters.llm.upstream import (
    FailureKind,
    UpstreamFailure,
    from_status,
    from_transport,
    malformed,
)
from application.ports import ChatCompletion, ChatDelta, ChatRequest, ChatTurn, TokenUsage


def _message(turn: ChatTurn) -> dict[str, Any]:
    if turn.image_url is None:
        return {"role": turn.role, "content": turn.content}
    return {
        "role": turn.role,
        "content": [
            {"type": "text", "text": turn.content},
            {"type": "image_url", "image_url": {"url": turn.image_url}},
        ],
    }


def _usage(raw: Any) -> TokenUsage | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens", 0), raw.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)


class OpenAICompatibleClient:
    def __init__(self, *, name: str, base_url: str, api_key: str, http: httpx.AsyncClient) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._key = api_key
        self._http = http
        # Bodies are encoded and decoded with msgspec: several times faster than the
        # stdlib json httpx would use, and a chat request carries the whole history.
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def _body(self, upstream_model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": upstream_model,
            "messages": [_message(turn) for turn in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, upstream_model: str, request: ChatRequest) -> ChatCompletion:
        try:
            response = await self._http.post(
                self._url,
                content=msgspec.json.encode(self._body(upstream_model, request, stream=False)),
                headers=self._headers,
            )
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if response.status_code != 200:
            raise from_status(self.name, response, response.text, self._key)
        try:
            document = msgspec.json.decode(response.content)
            choice = document["choices"][0]
            content = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (msgspec.DecodeError, KeyError, IndexError, TypeError, AttributeError):
            raise malformed(self.name, "no choices[0].message") from None
        if not isinstance(content, str):
            raise malformed(self.name, "message content is not text")
        return ChatCompletion(
            text=content,
            model=upstream_model,
            provider=self.name,
            usage=_usage(document.get("usage")) or TokenUsage(),
            finish_reason=str(finish),
        )

    async def stream(self, upstream_model: str, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        body = self._body(upstream_model, request, stream=True)
        usage: TokenUsage | None = None
        finish: str | None = None
        done = False
        try:
            async with self._http.stream(
                "POST", self._url, content=msgspec.json.encode(body), headers=self._headers
            ) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace")
                    raise from_status(self.name, response, text, self._key)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    chunk = _chunk(self.name, payload)
                    usage = _usage(chunk.get("usage")) or usage
                    choices = chunk.get("choices")
                    if not isinstance(choices, list):
                        raise malformed(self.name, "a stream chunk has no choices list")
                    for choice in choices:
                        if not isinstance(choice, dict):
                            raise malformed(self.name, "a stream choice is not an object")
                        delta = (choice or {}).get("delta") or {}
                        piece = delta.get("content")
                        if isinstance(piece, str) and piece:
                            yield ChatDelta(text=piece)
                        finish = choice.get("finish_reason") or finish
        except httpx.TransportError as error:
            raise from_transport(self.name, error) from None
        if not done:
            raise UpstreamFailure(
                FailureKind.TRANSPORT, self.name, "the stream ended before it was complete"
            )
        yield ChatDelta(
            usage=usage or TokenUsage(),
            finish_reason=finish or "stop",
            model=upstream_model,
            provider=self.name,
        )


def _chunk(provider: str, payload: str) -> dict[str, Any]:
    try:
        chunk = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raise malformed(provider, "a stream chunk is not JSON") from None
    if not isinstance(chunk, dict):
        raise malformed(provider, "a stream chunk is not an object")
    return chunk
