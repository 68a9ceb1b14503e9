"""ChatSettings validates itself and reports every failing field at once."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chat_settings import ChatSettings
from domain.errors import InvalidInput

fast = settings(max_examples=100, deadline=None)

models = st.one_of(
    st.sampled_from(["", " ", "\t\n", "gpt-4o", "qwen-plus", " kimi "]),
    st.text(max_size=12),
)
temperatures = st.one_of(
    st.floats(min_value=0.0, max_value=2.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 2.0, -0.0, -1e-9, 2.0000001, math.nan, math.inf, -math.inf]),
)
max_tokens = st.one_of(
    st.integers(min_value=1, max_value=1_000_000),
    st.integers(min_value=-10, max_value=2_000_000),
    st.sampled_from([0, 1, 1_000_000, 1_000_001]),
)


def expected_failures(ai_model: str, temperature: float, tokens: int) -> set[str]:
    failing = set()
    if not ai_model.strip():
        failing.add("ai_model")
    if not (math.isfinite(temperature) and 0.0 <= temperature <= 2.0):
        failing.add("temperature")
    if not 1 <= tokens <= 1_000_000:
        failing.add("max_tokens")
    return failing


@fast
@given(ai_model=models, temperature=temperatures, tokens=max_tokens)
def test_settings_are_valid_exactly_when_every_field_is(
    ai_model: str, temperature: float, tokens: int
) -> None:
    failing = expected_failures(ai_model, temperature, tokens)
    if not failing:
        made = ChatSettings(ai_model=ai_model, temperature=temperature, max_tokens=tokens)
        assert (made.ai_model, made.temperature, made.max_tokens) == (
            ai_model,
            temperature,
            tokens,
        )
        return
    with pytest.raises(InvalidInput) as raised:
        ChatSettings(ai_model=ai_model, temperature=temperature, max_tokens=tokens)
    assert set(raised.value.field_errors) == failing
    assert all(raised.value.field_errors[name] for name in failing)


def test_all_three_failures_are_reported_together() -> None:
    with pytest.raises(InvalidInput) as raised:
        ChatSettings(ai_model="  ", temperature=-1.0, max_tokens=0)
    assert set(raised.value.field_errors) == {"ai_model", "temperature", "max_tokens"}


valid = st.builds(
    ChatSettings,
    ai_model=st.sampled_from(["gpt-4o", "qwen-plus", "kimi"]),
    temperature=st.floats(min_value=0.0, max_value=2.0),
    max_tokens=st.integers(min_value=1, max_value=1_000_000),
)


@fast
@given(
    base=valid,
    ai_model=st.none() | st.sampled_from(["deepseek-chat", "gemini-1.5"]),
    temperature=st.none() | st.floats(min_value=0.0, max_value=2.0),
    tokens=st.none() | st.integers(min_value=1, max_value=1_000_000),
)
def test_changed_replaces_given_fields_and_keeps_those_given_none(
    base: ChatSettings, ai_model: str | None, temperature: float | None, tokens: int | None
) -> None:
    result = base.changed(ai_model=ai_model, temperature=temperature, max_tokens=tokens)
    assert result.ai_model == (base.ai_model if ai_model is None else ai_model)
    assert result.temperature == (base.temperature if temperature is None else temperature)
    assert result.max_tokens == (base.max_tokens if tokens is None else tokens)


def test_changed_applies_a_zero_temperature_rather_than_keeping_the_old_one() -> None:
    base = ChatSettings(ai_model="m", temperature=1.5, max_tokens=10)
    assert base.changed(temperature=0.0).temperature == 0.0


@fast
@given(
    base=valid,
    temperature=st.none() | st.sampled_from([-0.5, 2.5, math.nan]),
    tokens=st.none() | st.sampled_from([0, -3, 1_000_001]),
    ai_model=st.none() | st.sampled_from(["", "   "]),
)
def test_changed_validates_and_reports_every_bad_field(
    base: ChatSettings, temperature: float | None, tokens: int | None, ai_model: str | None
) -> None:
    failing = {
        name
        for name, value in [
            ("temperature", temperature),
            ("max_tokens", tokens),
            ("ai_model", ai_model),
        ]
        if value is not None
    }
    if not failing:
        assert base.changed() == base
        return
    with pytest.raises(InvalidInput) as raised:
        base.changed(ai_model=ai_model, temperature=temperature, max_tokens=tokens)
    assert set(raised.value.field_errors) == failing
