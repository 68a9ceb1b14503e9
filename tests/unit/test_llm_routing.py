"""The retry and fallback policy of the routed ChatModel, with scripted provider clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from adapters.llm.routing import RetryPolicy, Route, RoutedChatModel
from adapters.llm.upstream import FailureKind, UpstreamFailure, UpstreamModel
from application.errors import (
    ModelFailure,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderTimeout,
    ProviderUnavailable,
)
from application.ports import ChatCompletion, ChatDelta, ChatRequest, ChatTurn, ModelInfo

FAST = RetryPolicy(max_attempts=3, backoff_initial=0.001, backoff_max=0.002, deadline=5)


@dataclass
class ScriptedClient:
    name: str
    script: list[UpstreamFailure | str] = field(default_factory=list)
    calls: int = 0

    def _next(self) -> str:
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, UpstreamFailure):
            raise step
        return step

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion:
        return ChatCompletion(text=self._next(), model=model.name, provider=self.name)

    async def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text=self._next())
        for step in list(self.script):
            self.script.pop(0)
            if isinstance(step, UpstreamFailure):
                raise step
            yield ChatDelta(text=step)
        yield ChatDelta(finish_reason="stop", model=model.name, provider=self.name)


def _fail(kind: FailureKind, retry_after: float | None = None) -> UpstreamFailure:
    return UpstreamFailure(kind, "P", kind.value, retry_after=retry_after)


def _model(
    primary: ScriptedClient,
    backup: ScriptedClient | None = None,
    policy: RetryPolicy = FAST,
    images: bool = True,
) -> RoutedChatModel:
    routes = {
        "main": Route(
            model=ModelInfo(id="main", name="Main", provider="P", supports_images=images),
            client=primary,
            upstream=UpstreamModel(name="main-upstream"),
        )
    }
    fallbacks: dict[str, list[str]] = {}
    if backup is not None:
        routes["backup"] = Route(
            model=ModelInfo(id="backup", name="Backup", provider="B", supports_images=True),
            client=backup,
            upstream=UpstreamModel(name="backup-upstream"),
        )
        fallbacks["main"] = ["backup"]
    return RoutedChatModel(routes, fallbacks, policy)


REQUEST = ChatRequest(
    model="main", messages=[ChatTurn(role="user", content="hi")], temperature=1, max_tokens=10
)


@pytest.mark.parametrize(
    "kind",
    [
        FailureKind.RATE_LIMITED,
        FailureKind.SERVER_ERROR,
        FailureKind.UNAVAILABLE,
        FailureKind.CONNECT,
        FailureKind.TRANSPORT,
        FailureKind.TIMEOUT,
    ],
)
async def test_retryable_failures_are_retried_until_success(kind: FailureKind) -> None:
    primary = ScriptedClient("P", [_fail(kind), _fail(kind), "fine"])
    completion = await _model(primary).complete(REQUEST)
    assert completion.text == "fine"
    assert primary.calls == 3
    assert completion.model == "main"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        (FailureKind.AUTH, ProviderAuthError),
        (FailureKind.BAD_REQUEST, ProviderError),
        (FailureKind.MALFORMED, ProviderError),
        (FailureKind.QUOTA, ProviderQuotaExceeded),
    ],
)
async def test_non_retryable_failures_are_not_retried(kind: FailureKind, error: type) -> None:
    primary = ScriptedClient("P", [_fail(kind), "never reached"])
    with pytest.raises(error):
        await _model(primary).complete(REQUEST)
    assert primary.calls == 1


async def test_retry_after_is_honoured() -> None:
    primary = ScriptedClient("P", [_fail(FailureKind.RATE_LIMITED, retry_after=0.2), "fine"])
    started = time.monotonic()
    await _model(primary).complete(REQUEST)
    assert time.monotonic() - started >= 0.2


async def test_a_wait_longer_than_allowed_ends_the_retries_at_once() -> None:
    # Retrying before the provider's wait is over only earns another 429 (Gemini's free
    # tier asks for ~40 s): give up now, and let the fallback chain or the user go on.
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.001, retry_after_max=0.05, deadline=5)
    primary = ScriptedClient("P", [_fail(FailureKind.RATE_LIMITED, retry_after=60), "fine"])
    backup = ScriptedClient("B", ["from backup"])
    started = time.monotonic()
    completion = await _model(primary, backup, policy=policy).complete(REQUEST)
    assert time.monotonic() - started < 1
    assert (primary.calls, completion.text) == (1, "from backup")


async def test_a_wait_beyond_the_deadline_is_not_started() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.001, retry_after_max=60, deadline=0.5)
    primary = ScriptedClient("P", [_fail(FailureKind.RATE_LIMITED, retry_after=10), "fine"])
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as raised:
        await _model(primary, policy=policy).complete(REQUEST)
    assert time.monotonic() - started < 0.4
    assert raised.value.retry_after == 10  # passed on: the edge answers Retry-After


async def test_spent_retries_fall_back_to_the_next_model() -> None:
    primary = ScriptedClient("P", [_fail(FailureKind.SERVER_ERROR)] * 3)
    backup = ScriptedClient("B", ["from backup"])
    completion = await _model(primary, backup).complete(REQUEST)
    assert (completion.text, completion.model, completion.provider) == (
        "from backup",
        "backup",
        "B",
    )
    assert primary.calls == 3


async def test_final_failure_type_follows_the_failures() -> None:
    primary = ScriptedClient("P", [_fail(FailureKind.TIMEOUT)] * 3)
    with pytest.raises(ProviderTimeout):
        await _model(primary).complete(REQUEST)
    mixed_primary = ScriptedClient("P", [_fail(FailureKind.AUTH)])
    mixed_backup = ScriptedClient("B", [_fail(FailureKind.SERVER_ERROR)] * 3)
    with pytest.raises(ProviderUnavailable):
        await _model(mixed_primary, mixed_backup).complete(REQUEST)


async def test_the_deadline_bounds_all_attempts() -> None:
    policy = RetryPolicy(max_attempts=100, backoff_initial=0.05, backoff_max=0.05, deadline=0.3)
    primary = ScriptedClient("P", [_fail(FailureKind.SERVER_ERROR)] * 100)
    started = time.monotonic()
    # Whether the last 5xx or the deadline itself ends it depends on timing; either way
    # the model failed, and in bounded time.
    with pytest.raises(ModelFailure):
        await _model(primary, policy=policy).complete(REQUEST)
    assert time.monotonic() - started < 1.5
    assert primary.calls < 20


async def test_images_skip_models_that_do_not_take_them() -> None:
    primary = ScriptedClient("P")
    backup = ScriptedClient("B", ["seen it"])
    request = ChatRequest(
        model="main",
        temperature=1,
        max_tokens=5,
        messages=[ChatTurn(role="user", content="x", image_url="data:image/png;base64,AAAA")],
    )
    completion = await _model(primary, backup, images=False).complete(request)
    assert completion.text == "seen it"
    assert primary.calls == 0


async def test_streams_are_retried_only_before_the_first_token() -> None:
    primary = ScriptedClient("P", [_fail(FailureKind.SERVER_ERROR), "one", " two"])
    texts = [d.text async for d in _model(primary).stream(REQUEST)]
    assert "".join(texts) == "one two"
    assert primary.calls == 2

    broken = ScriptedClient("P", ["one", _fail(FailureKind.TRANSPORT)])
    seen: list[str] = []

    async def consume() -> None:
        async for delta in _model(broken).stream(REQUEST):
            seen.append(delta.text)

    with pytest.raises(ProviderError):
        await consume()
    assert seen == ["one"]
    assert broken.calls == 1


async def test_final_stream_delta_names_the_public_model() -> None:
    primary = ScriptedClient("P", ["hi"])
    deltas = [d async for d in _model(primary).stream(REQUEST)]
    assert (deltas[-1].model, deltas[-1].provider) == ("main", "P")
