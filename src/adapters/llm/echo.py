"""The offline ``echo`` model: deterministic replies for development and tests, no network.

It repeats the user's latest message back, so a running Parley can be tried end to end
before any provider is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.llm.upstream import UpstreamModel
from application.ports import ChatCompletion, ChatDelta, ChatRequest, TokenUsage

ECHO_MODEL_ID = "echo"
ECHO_PROVIDER = "Parley (offline)"


def _tokens(text: str) -> int:
    return len(text.split())


class EchoChatModel:
    """A provider client like the real ones, answering from the request alone."""

    name = ECHO_PROVIDER

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion:
        text, usage, finish = self._answer(request)
        return ChatCompletion(
            text=text,
            model=request.model,
            provider=ECHO_PROVIDER,
            usage=usage,
            finish_reason=finish,
        )

    async def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        text, usage, finish = self._answer(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            yield ChatDelta(text=word if index == 0 else " " + word)
        yield ChatDelta(
            usage=usage, finish_reason=finish, model=request.model, provider=ECHO_PROVIDER
        )

    def _answer(self, request: ChatRequest) -> tuple[str, TokenUsage, str]:
        last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        words = f"Echo: {last_user}".split(" ")
        finish = "stop"
        if len(words) > request.max_tokens:
            words, finish = words[: request.max_tokens], "length"
        text = " ".join(words)
        prompt_tokens = sum(_tokens(m.content) for m in request.messages)
        return (
            text,
            TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=_tokens(text)),
            finish,
        )
