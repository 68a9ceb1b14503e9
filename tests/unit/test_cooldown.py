"""Cool-down of models whose provider keeps failing: the rule on its own (against a model
of it written from the whole history), and the routed ChatModel skipping a cooling model
for its fallback, then trying it again once the cool-down is over."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.llm.cooldown import Cooldowns
from adapters.llm.routing import RetryPolicy, Route, RoutedChatModel
from adapters.llm.setup import LlmConfig, ModelConfigError, build_llm
from adapters.llm.upstream import FailureKind, UpstreamFailure, UpstreamModel
from application.errors import ProviderAuthError, ProviderError
from application.ports import ChatRequest, ChatTurn, ModelInfo
from tests.unit.test_llm_routing import FAST, ScriptedClient

COUNTED = [
    FailureKind.RATE_LIMITED,
    FailureKind.UNAVAILABLE,
    FailureKind.SERVER_ERROR,
    FailureKind.CONNECT,
    FailureKind.TRANSPORT,
    FailureKind.TIMEOUT,
]
NOT_COUNTED = [
    FailureKind.AUTH,
    FailureKind.BAD_REQUEST,
    FailureKind.QUOTA,
    FailureKind.MALFORMED,
]
REQUEST = ChatRequest(
    model="main", messages=[ChatTurn(role="user", content="hi")], temperature=1, max_tokens=10
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(kind: FailureKind) -> UpstreamFailure:
    return UpstreamFailure(kind, "P", kind.value)


# ---- the rule ------------------------------------------------------------------------


def test_consecutive_provider_failures_cool_a_model_down_for_a_while() -> None:
    clock = ManualClock()
    cooldowns = Cooldowns(failures=3, seconds=30, clock=clock)
    assert [cooldowns.failed("m", _fail(FailureKind.SERVER_ERROR)) for _ in range(3)] == [
        False,
        False,
        True,
    ]
    assert cooldowns.is_cooling("m")
    assert not cooldowns.is_cooling("other")
    assert cooldowns.remaining() == {"m": 30}
    clock.now += 29.5
    assert cooldowns.remaining() == {"m": 0.5}
    clock.now += 0.5
    assert not cooldowns.is_cooling("m")
    assert cooldowns.remaining() == {}


def test_a_success_resets_the_count() -> None:
    cooldowns = Cooldowns(failures=2, seconds=30, clock=ManualClock())
    cooldowns.failed("m", _fail(FailureKind.TIMEOUT))
    cooldowns.succeeded("m")
    assert not cooldowns.failed("m", _fail(FailureKind.TIMEOUT))
    assert not cooldowns.is_cooling("m")


@pytest.mark.parametrize("kind", NOT_COUNTED)
def test_refusals_of_the_request_neither_count_nor_reset(kind: FailureKind) -> None:
    cooldowns = Cooldowns(failures=2, seconds=30, clock=ManualClock())
    for _ in range(5):
        assert not cooldowns.failed("m", _fail(kind))
    assert not cooldowns.is_cooling("m")
    cooldowns.failed("m", _fail(FailureKind.RATE_LIMITED))
    cooldowns.failed("m", _fail(kind))  # between two 429s: the streak goes on
    assert cooldowns.failed("m", _fail(FailureKind.RATE_LIMITED))


def test_after_the_cool_down_one_more_failure_cools_it_again_at_once() -> None:
    clock = ManualClock()
    cooldowns = Cooldowns(failures=3, seconds=10, clock=clock)
    for _ in range(3):
        cooldowns.failed("m", _fail(FailureKind.UNAVAILABLE))
    clock.now += 10
    assert not cooldowns.is_cooling("m")  # half-open: the next call is tried
    assert cooldowns.failed("m", _fail(FailureKind.UNAVAILABLE))
    assert cooldowns.remaining() == {"m": 10}


def test_zero_failures_turns_cool_downs_off() -> None:
    cooldowns = Cooldowns(failures=0, seconds=30, clock=ManualClock())
    for _ in range(10):
        assert not cooldowns.failed("m", _fail(FailureKind.SERVER_ERROR))
    assert cooldowns.remaining() == {}


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        Cooldowns(failures=-1, seconds=30)
    with pytest.raises(ValueError, match="0 or more"):
        Cooldowns(failures=3, seconds=-1)
    with pytest.raises(ModelConfigError, match="provider_cooldown_failures"):
        build_llm(LlmConfig(cooldown_failures=-1))


Step = tuple[str, FailureKind | float | None]
steps = st.one_of(
    st.tuples(st.just("success"), st.none()),
    st.tuples(st.just("failure"), st.sampled_from(COUNTED + NOT_COUNTED)),
    st.tuples(st.just("wait"), st.sampled_from([0.0, 1.0, 4.0, 5.0, 11.0])),
)


THRESHOLD, SECONDS = 3, 5.0
History = list[tuple[float, str, FailureKind | None]]


def _streak(history: History) -> int:
    """Counted failures since the last success."""
    streak = 0
    for _, what, kind in history:
        if what == "success":
            streak = 0
        elif kind in COUNTED:
            streak += 1
    return streak


def _cooling_by_history(history: History, now: float) -> bool:
    """The rule from the whole history: cooling while within ``SECONDS`` of the newest
    counted failure that made a streak of ``THRESHOLD`` or more, unless a success came
    after it."""
    cooling_from = None
    for position, (when, what, kind) in enumerate(history):
        if what == "success":
            cooling_from = None
        elif kind in COUNTED and _streak(history[: position + 1]) >= THRESHOLD:
            cooling_from = when
    return cooling_from is not None and now < cooling_from + SECONDS


@given(st.lists(steps, max_size=60))
@settings(max_examples=300, deadline=None)
def test_the_cool_down_follows_the_rule_for_any_sequence(sequence: list[Step]) -> None:
    clock = ManualClock()
    cooldowns = Cooldowns(failures=THRESHOLD, seconds=SECONDS, clock=clock)
    history: History = []
    for what, value in sequence:
        if what == "wait":
            assert isinstance(value, float)
            clock.now += value
        elif what == "success":
            cooldowns.succeeded("m")
            history.append((clock.now, what, None))
        else:
            assert isinstance(value, FailureKind)
            history.append((clock.now, what, value))
            starts = cooldowns.failed("m", _fail(value))
            assert starts == (value in COUNTED and _streak(history) >= THRESHOLD)
        assert cooldowns.is_cooling("m") == _cooling_by_history(history, clock.now)
        assert ("m" in cooldowns.remaining()) == cooldowns.is_cooling("m")


# ---- the router ------------------------------------------------------------------------


@dataclass
class RecordedEvents:
    seen: list[tuple[str, ...]] = field(default_factory=list)

    def retried(self, provider: str, model: str) -> None:
        self.seen.append(("retried", provider, model))

    def fell_back(self, model: str, to_model: str) -> None:
        self.seen.append(("fell_back", model, to_model))

    def cooled_down(self, model: str) -> None:
        self.seen.append(("cooled_down", model))


def _routed(
    primary: ScriptedClient,
    backup: ScriptedClient | None,
    cooldowns: Cooldowns,
    events: RecordedEvents | None = None,
    policy: RetryPolicy = FAST,
) -> RoutedChatModel:
    routes = {
        "main": Route(
            model=ModelInfo(id="main", name="Main", provider="P"),
            client=primary,
            upstream=UpstreamModel(name="main-upstream"),
        )
    }
    fallbacks: dict[str, list[str]] = {}
    if backup is not None:
        routes["backup"] = Route(
            model=ModelInfo(id="backup", name="Backup", provider="B"),
            client=backup,
            upstream=UpstreamModel(name="backup-upstream"),
        )
        fallbacks["main"] = ["backup"]
    return RoutedChatModel(routes, fallbacks, policy, cooldowns=cooldowns, events=events)


async def test_a_cooling_primary_is_skipped_for_its_fallback_until_the_cool_down_ends() -> None:
    clock = ManualClock()
    primary = ScriptedClient("P", [_fail(FailureKind.SERVER_ERROR)] * 6)
    backup = ScriptedClient("B", ["b1", "b2", "b3"])
    events = RecordedEvents()
    model = _routed(primary, backup, Cooldowns(failures=2, seconds=30, clock=clock), events)

    first = await model.complete(REQUEST)
    assert (first.text, primary.calls) == ("b1", 3)
    assert events.seen == [
        ("retried", "P", "main"),
        ("retried", "P", "main"),
        ("fell_back", "main", "backup"),
    ]
    events.seen.clear()

    second = await model.complete(REQUEST)
    assert (second.text, primary.calls) == ("b2", 6)
    assert events.seen == [
        ("retried", "P", "main"),
        ("retried", "P", "main"),
        ("cooled_down", "main"),
        ("fell_back", "main", "backup"),
    ]
    events.seen.clear()

    # Cooling: straight to the fallback, the primary untouched.
    third = await model.complete(REQUEST)
    assert (third.text, third.model, primary.calls) == ("b3", "backup", 6)
    assert events.seen == []

    clock.now += 30
    fourth = await model.complete(REQUEST)  # the primary's script is spent: it answers
    assert (fourth.text, fourth.model, primary.calls) == ("ok", "main", 7)
    assert events.seen == []


async def test_a_stream_skips_a_cooling_primary_too() -> None:
    clock = ManualClock()
    primary = ScriptedClient("P")
    backup = ScriptedClient("B", ["from backup"])
    cooldowns = Cooldowns(failures=1, seconds=30, clock=clock)
    cooldowns.failed("main", _fail(FailureKind.RATE_LIMITED))
    model = _routed(primary, backup, cooldowns)
    texts = [delta.text async for delta in model.stream(REQUEST)]
    assert "".join(texts) == "from backup"
    assert primary.calls == 0


async def test_when_every_route_is_cooling_they_are_tried_anyway() -> None:
    clock = ManualClock()
    cooldowns = Cooldowns(failures=1, seconds=30, clock=clock)
    for model_id in ("main", "backup"):
        cooldowns.failed(model_id, _fail(FailureKind.SERVER_ERROR))
    primary = ScriptedClient("P", ["answered while cooling"])
    completion = await _routed(primary, ScriptedClient("B"), cooldowns).complete(REQUEST)
    assert completion.text == "answered while cooling"
    assert cooldowns.remaining() == {"backup": 30}  # the success ended main's cool-down


async def test_a_lone_cooling_model_is_still_asked() -> None:
    cooldowns = Cooldowns(failures=1, seconds=30, clock=ManualClock())
    primary = ScriptedClient("P", [_fail(FailureKind.SERVER_ERROR)] * 3)
    model = _routed(primary, None, cooldowns)
    with pytest.raises(ProviderError):
        await model.complete(REQUEST)
    assert cooldowns.is_cooling("main")
    completion = await model.complete(REQUEST)
    assert (completion.text, primary.calls) == ("ok", 4)


async def test_refused_requests_never_cool_a_model_down() -> None:
    clock = ManualClock()
    primary = ScriptedClient("P", [_fail(FailureKind.AUTH)] * 5)
    backup = ScriptedClient("B")
    events = RecordedEvents()
    model = _routed(primary, backup, Cooldowns(failures=2, seconds=30, clock=clock), events)
    for _ in range(5):
        await model.complete(REQUEST)
    assert primary.calls == 5  # asked every time: a 401 is no outage
    assert events.seen == [("fell_back", "main", "backup")] * 5


async def test_a_stream_cut_after_its_first_token_counts_as_a_failure() -> None:
    cooldowns = Cooldowns(failures=1, seconds=30, clock=ManualClock())
    primary = ScriptedClient("P", ["one", _fail(FailureKind.TRANSPORT)])
    events = RecordedEvents()
    model = _routed(primary, ScriptedClient("B"), cooldowns, events)
    with pytest.raises(ProviderError):
        _ = [delta async for delta in model.stream(REQUEST)]
    assert cooldowns.is_cooling("main")
    assert events.seen == [("cooled_down", "main")]  # too late for a fallback


async def test_a_stream_that_ends_resets_the_count() -> None:
    cooldowns = Cooldowns(failures=2, seconds=30, clock=ManualClock())
    cooldowns.failed("main", _fail(FailureKind.SERVER_ERROR))
    model = _routed(ScriptedClient("P", ["fine"]), None, cooldowns)
    _ = [delta async for delta in model.stream(REQUEST)]
    assert not cooldowns.failed("main", _fail(FailureKind.SERVER_ERROR))


async def test_without_a_fallback_no_fallback_event_is_heard() -> None:
    events = RecordedEvents()
    primary = ScriptedClient("P", [_fail(FailureKind.AUTH)])
    model = _routed(primary, None, Cooldowns(failures=0, seconds=0), events)
    with pytest.raises(ProviderAuthError):
        await model.complete(REQUEST)
    assert events.seen == []
