"""QuotaPolicy: the active-conversation limit and the message size rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ActiveConversationLimit, InvalidInput, MessageTooLong
from domain.quota import QuotaPolicy

WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u2003\u3000"

limits = st.integers(min_value=1, max_value=60)
fast = settings(max_examples=100, deadline=None)


def test_defaults_are_ten_conversations_and_4000_characters() -> None:
    policy = QuotaPolicy()
    assert policy.max_active_conversations == 10
    assert policy.max_message_chars == 4000


@pytest.mark.parametrize(
    "kwargs", [{"max_active_conversations": 0}, {"max_message_chars": 0}, {"max_message_chars": -5}]
)
def test_a_policy_needs_positive_limits(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QuotaPolicy(**kwargs)


@fast
@given(maximum=limits, active=st.integers(min_value=0, max_value=100))
def test_activation_is_allowed_exactly_below_the_limit(maximum: int, active: int) -> None:
    policy = QuotaPolicy(max_active_conversations=maximum)
    if active < maximum:
        policy.check_can_activate(active)
    else:
        with pytest.raises(ActiveConversationLimit) as raised:
            policy.check_can_activate(active)
        assert raised.value.code == "active_conversation_limit"
        assert str(maximum) in raised.value.message


@st.composite
def non_blank_text(draw: st.DrawFn, *, min_size: int, max_size: int) -> str:
    text = draw(st.text(min_size=min_size, max_size=max_size))
    if not text.strip():
        # Put a visible character somewhere, keeping the length.
        position = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        text = text[:position] + "x" + text[position + 1 :] if text else "x"
    return text


@fast
@given(data=st.data(), maximum=st.integers(min_value=1, max_value=300))
def test_non_blank_messages_up_to_the_limit_are_accepted(data: st.DataObject, maximum: int) -> None:
    text = data.draw(non_blank_text(min_size=1, max_size=maximum))
    assert 1 <= len(text) <= maximum
    QuotaPolicy(max_message_chars=maximum).check_message(text)


@fast
@given(data=st.data(), maximum=st.integers(min_value=1, max_value=300))
def test_non_blank_messages_over_the_limit_are_too_long(data: st.DataObject, maximum: int) -> None:
    text = data.draw(non_blank_text(min_size=maximum + 1, max_size=maximum + 50))
    with pytest.raises(MessageTooLong) as raised:
        QuotaPolicy(max_message_chars=maximum).check_message(text)
    assert set(raised.value.field_errors) == {"message"}
    assert raised.value.limit == maximum
    assert raised.value.code == "message_too_long"
    assert str(maximum) in raised.value.field_errors["message"][0]


@fast
@given(
    text=st.text(alphabet=WHITESPACE, max_size=50),
    maximum=st.integers(min_value=1, max_value=300),
)
def test_blank_or_whitespace_only_messages_are_refused(text: str, maximum: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        QuotaPolicy(max_message_chars=maximum).check_message(text)
    assert set(raised.value.field_errors) == {"message"}


def test_the_limit_is_inclusive_at_the_default() -> None:
    policy = QuotaPolicy()
    policy.check_message("a" * 4000)
    with pytest.raises(MessageTooLong):
        policy.check_message("a" * 4001)
