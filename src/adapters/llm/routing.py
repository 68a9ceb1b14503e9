"""The ChatModel the application talks to: public model id -> provider, with retries
and a fallback chain.

Retries (tenacity): exponential backoff with jitter on 429, 5xx and transport errors,
never on 400/401/403/404 or billing errors, all within one overall deadline per
request. A wait the provider asked for (Retry-After, OpenAI's retry-after-ms, Gemini's
RetryInfo in the body) is honoured exactly: retrying sooner only earns another 429, so a
wait longer than ``retry_after_max`` or than the deadline leaves ends the retries at once
(the fallback chain goes on). When a model's retries are spent, the next model of its
fallback chain is tried. A stream is retried only until its first token: after that, a
failure ends it.

Cool-down (``adapters.llm.cooldown``): a model that keeps failing through the provider's
fault is skipped in its chain for a while, unless every route of the chain is cooling.
``RouteEvents`` hears of retries, fallbacks and cool-downs (for metrics)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from adapters.llm.cooldown import Cooldowns
from adapters.llm.upstream import FailureKind, UpstreamFailure, UpstreamModel
from application.errors import ModelFailure, ProviderUnavailable
from application.ports import ChatCompletion, ChatDelta, ChatRequest, ModelInfo

log = logging.getLogger("parley.llm")

T = TypeVar("T")


class ProviderClient(Protocol):
    name: str

    async def complete(self, model: UpstreamModel, request: ChatRequest) -> ChatCompletion: ...

    def stream(self, model: UpstreamModel, request: ChatRequest) -> AsyncIterator[ChatDelta]: ...


@dataclass(frozen=True, kw_only=True)
class Route:
    model: ModelInfo
    client: ProviderClient
    upstream: UpstreamModel


class RouteEvents(Protocol):
    """What the router does besides answering. ``provider`` is the route's
    ``model.provider``, ``model`` the public model id."""

    def retried(self, provider: str, model: str) -> None:
        """Before each retry's wait."""
        ...

    def fell_back(self, model: str, to_model: str) -> None:
        """``model`` failed; ``to_model``, the next of its chain, is tried."""
        ...

    def cooled_down(self, model: str) -> None:
        """``model`` starts a cool-down."""
        ...


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 20.0
    deadline: float = 120.0


class RoutedChatModel:
    def __init__(
        self,
        routes: Mapping[str, Route],
        fallbacks: Mapping[str, Sequence[str]],
        policy: RetryPolicy,
        *,
        cooldowns: Cooldowns | None = None,
        events: RouteEvents | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._fallbacks = {k: list(v) for k, v in fallbacks.items()}
        self._policy = policy
        self._cooldowns = Cooldowns(failures=0, seconds=0) if cooldowns is None else cooldowns
        self._events = events
        self._backoff = wait_exponential_jitter(
            multiplier=policy.backoff_initial,
            max=policy.backoff_max,
            jitter=policy.backoff_initial,
        )

    def chain(self, model_id: str) -> list[Route]:
        ids = [model_id, *self._fallbacks.get(model_id, [])]
        return [self._routes[i] for i in dict.fromkeys(ids) if i in self._routes]

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        deadline = asyncio.get_running_loop().time() + self._policy.deadline
        failures: list[UpstreamFailure] = []
        chain = self._warm_chain(request)
        for position, route in enumerate(chain):
            try:

                async def complete_once(r: Route = route) -> ChatCompletion:
                    return await r.client.complete(r.upstream, request)

                completion = await self._retrying(deadline, route, complete_once)
            except UpstreamFailure as failure:
                failures.append(failure)
                log.warning("model %s failed: %s", route.model.id, failure)
                self._failed(route, failure, _after(chain, position))
                continue
            self._cooldowns.succeeded(route.model.id)
            return replace(completion, model=route.model.id, provider=route.model.provider)
        raise _final(failures)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        deadline = asyncio.get_running_loop().time() + self._policy.deadline
        failures: list[UpstreamFailure] = []
        chain = self._warm_chain(request)
        for position, route in enumerate(chain):
            holder: list[AsyncIterator[ChatDelta]] = []

            async def first_delta(
                r: Route = route, h: list[AsyncIterator[ChatDelta]] = holder
            ) -> ChatDelta:
                iterator = r.client.stream(r.upstream, request)
                try:
                    delta = await anext(iterator)
                except BaseException:
                    await _close(iterator)
                    raise
                h[:] = [iterator]
                return delta

            try:
                first = await self._retrying(deadline, route, first_delta)
            except UpstreamFailure as failure:
                failures.append(failure)
                log.warning("model %s failed before streaming: %s", route.model.id, failure)
                self._failed(route, failure, _after(chain, position))
                continue
            iterator = holder[0]
            try:
                yield self._public(first, route)
                async for delta in iterator:
                    yield self._public(delta, route)
            except UpstreamFailure as failure:
                # Cut after its first token: no fallback any more, but it is the
                # provider's failure all the same.
                self._failed(route, failure, None)
                raise failure.to_port_error() from None
            finally:
                await _close(iterator)
            # Only a stream that ended is a success: one that is cut again and again
            # after its first token must not keep resetting the count.
            self._cooldowns.succeeded(route.model.id)
            return
        raise _final(failures)

    def _warm_chain(self, request: ChatRequest) -> list[Route]:
        """The usable chain without its cooling routes, unless that leaves none: a
        cool-down never refuses a request on its own."""
        chain = self._usable_chain(request)
        warm = [route for route in chain if not self._cooldowns.is_cooling(route.model.id)]
        return warm or chain

    def _failed(self, route: Route, failure: UpstreamFailure, next_route: Route | None) -> None:
        cooling_starts = self._cooldowns.failed(route.model.id, failure)
        if self._events is None:
            return
        if cooling_starts:
            self._events.cooled_down(route.model.id)
        if next_route is not None:
            self._events.fell_back(route.model.id, next_route.model.id)

    def _usable_chain(self, request: ChatRequest) -> list[Route]:
        chain = self.chain(request.model)
        if request.permitted_models is not None:
            chain = [route for route in chain if route.model.id in request.permitted_models]
        images = {_mime_of(turn.image_url) for turn in request.messages if turn.image_url}
        if images:
            chain = [route for route in chain if all(map(route.model.takes_image, images))]
        if _uses_tools(request):
            chain = [route for route in chain if route.model.supports_tools]
        if not chain:
            raise ProviderUnavailable(f'No provider can serve the model "{request.model}".')
        return chain

    async def _retrying(
        self, deadline: float, route: Route, attempt_once: Callable[[], Awaitable[T]]
    ) -> T:
        """The first attempt is made outside tenacity, whose set-up cost every call on
        the happy path (bench/); its failure is then replayed as tenacity's first
        attempt, so that waits, stops and events are exactly tenacity's."""
        loop = asyncio.get_running_loop()
        provider = route.client.name
        try:
            return await _attempt(loop, deadline, provider, attempt_once)
        except UpstreamFailure as failure:
            if not failure.retryable:
                raise
            first_failure: UpstreamFailure | None = failure

        async def replay_then_attempt() -> T:
            nonlocal first_failure
            if first_failure is not None:
                failure, first_failure = first_failure, None
                raise failure
            return await _attempt(loop, deadline, provider, attempt_once)

        return await self._retried(loop, deadline, route, replay_then_attempt)

    async def _retried(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        route: Route,
        attempt_once: Callable[[], Awaitable[T]],
    ) -> T:
        events = self._events

        def before_sleep(state: RetryCallState) -> None:
            if events is not None:
                events.retried(route.model.provider, route.model.id)

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            pause = self._backoff(state)
            if isinstance(failure, UpstreamFailure) and failure.retry_after is not None:
                pause = failure.retry_after
            return max(0.0, min(pause, deadline - loop.time()))

        def asked_to_wait_too_long(state: RetryCallState) -> bool:
            failure = state.outcome.exception() if state.outcome else None
            if not isinstance(failure, UpstreamFailure) or failure.retry_after is None:
                return False
            limit = min(self._policy.retry_after_max, deadline - loop.time())
            return failure.retry_after > limit

        retrying = AsyncRetrying(
            stop=stop_any(
                stop_after_attempt(self._policy.max_attempts),
                _StopAtDeadline(loop, deadline),
                _StopWhen(asked_to_wait_too_long),
            ),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, UpstreamFailure) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await attempt_once()
        raise AssertionError("unreachable: tenacity reraises the last failure")

    @staticmethod
    def _public(delta: ChatDelta, route: Route) -> ChatDelta:
        # Every delta names the model that is answering (a fallback's, if one is):
        # OpenAI's stream chunks each carry it.
        return replace(delta, model=route.model.id, provider=route.model.provider)


async def _attempt(
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    provider: str,
    attempt_once: Callable[[], Awaitable[T]],
) -> T:
    remaining = deadline - loop.time()
    if remaining <= 0:
        raise UpstreamFailure(FailureKind.TIMEOUT, provider, "the deadline passed")
    try:
        async with asyncio.timeout(remaining):
            return await attempt_once()
    except TimeoutError:
        raise UpstreamFailure(
            FailureKind.TIMEOUT, provider, "no answer before the deadline"
        ) from None


class _StopWhen(stop_base):
    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate(retry_state)


class _StopAtDeadline(stop_base):
    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._loop = loop
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._loop.time() >= self._deadline


def _after(chain: list[Route], position: int) -> Route | None:
    return chain[position + 1] if position + 1 < len(chain) else None


def _final(failures: list[UpstreamFailure]) -> ModelFailure:
    if not failures:
        return ProviderUnavailable()
    errors = [failure.to_port_error() for failure in failures]
    if len({type(error) for error in errors}) == 1:
        return errors[-1]
    return ProviderUnavailable(
        "All providers for this model failed: " + "; ".join(str(f) for f in failures)
    )


def _uses_tools(request: ChatRequest) -> bool:
    """A fallback that cannot take the request's tools (or tool turns) is no fallback."""
    return (
        request.tools is not None
        or request.response_format is not None
        or any(turn.tool_calls or turn.role == "tool" for turn in request.messages)
    )


def _mime_of(data_uri: str) -> str:
    return data_uri[5:].partition(";")[0] if data_uri.startswith("data:") else ""


async def _close(iterator: AsyncIterator[ChatDelta]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
