"""fit_history: the newest messages that fit the character budget, oldest first."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.conversation import Message, MessageRole, MessageStatus, NewMessage
from domain.history import fit_history
from tests.unit.in_memory import EPOCH


def message(content: str, status: MessageStatus = MessageStatus.COMPLETED, n: int = 0) -> Message:
    return Message(
        id=n,
        conversation_id=1,
        role=MessageRole.USER if n % 2 == 0 else MessageRole.ASSISTANT,
        content=content,
        created_at=EPOCH,
        status=status,
    )


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    specs = draw(
        st.lists(
            st.tuples(
                st.text(alphabet="ab ", max_size=30),
                st.sampled_from(list(MessageStatus)),
            ),
            max_size=15,
        )
    )
    return [message(content, status, n) for n, (content, status) in enumerate(specs)]


budgets = st.integers(min_value=0, max_value=120)


def chars(messages: Sequence[NewMessage]) -> int:
    return sum(len(m.content) for m in messages)


@settings(max_examples=150, deadline=None)
@given(messages=conversations(), budget=budgets)
def test_history_is_the_largest_suffix_of_usable_messages_within_budget(
    messages: list[Message], budget: int
) -> None:
    answered = (MessageStatus.COMPLETED, MessageStatus.PARTIAL)
    usable = [
        m
        for m, answer in zip(messages, [*messages[1:], None], strict=False)
        if m.status in answered
        and m.content.strip()
        and not (
            m.role is MessageRole.USER
            and answer is not None
            and answer.status is MessageStatus.BLOCKED
        )
    ]
    kept = fit_history(messages, budget)

    # A suffix of the usable messages, in order (compared by identity).
    assert [id(m) for m in kept] == [id(m) for m in usable[len(usable) - len(kept) :]]
    assert all(m.status in answered and m.content.strip() for m in kept)
    if usable:
        assert kept, "the newest message is always kept"
        assert kept[-1] is usable[-1]
        assert chars(kept) <= budget or len(kept) == 1
        if len(kept) < len(usable):
            older = usable[len(usable) - len(kept) - 1]
            assert chars(kept) + len(older.content) > budget, "a message that fitted was dropped"
    else:
        assert kept == []


def test_the_newest_message_is_kept_even_when_it_alone_is_over_budget() -> None:
    older, newest = message("hi", n=0), message("x" * 50, n=1)
    assert fit_history([older, newest], max_chars=10) == [newest]


def test_failed_replies_are_skipped_and_do_not_use_the_budget() -> None:
    question = message("q" * 4, n=0)
    failed = message("f" * 100, MessageStatus.FAILED, n=1)
    retry = message("r" * 4, n=2)
    assert fit_history([question, failed, retry], max_chars=8) == [question, retry]


def test_a_newest_failed_reply_is_not_kept() -> None:
    question = message("question", n=0)
    failed = message("", MessageStatus.FAILED, n=1)
    assert fit_history([question, failed], max_chars=100) == [question]


def test_budget_is_inclusive() -> None:
    a, b, c = message("aaa", n=0), message("bbb", n=1), message("ccc", n=2)
    assert fit_history([a, b, c], max_chars=6) == [b, c]
    assert fit_history([a, b, c], max_chars=9) == [a, b, c]


def test_an_empty_reply_is_never_sent_back_to_the_model() -> None:
    # Gemini answers 400 to a turn with an empty part, so one empty reply (a thinking
    # model that spent its budget, a refusal, a stream left before its first token) kept
    # in history would break every later turn of the conversation.
    question = message("question", n=0)
    empty = message("", MessageStatus.COMPLETED, n=1)
    blank_partial = message("  \n", MessageStatus.PARTIAL, n=3)
    follow_up = message("again", n=2)
    assert fit_history([question, empty, follow_up], max_chars=100) == [question, follow_up]
    assert fit_history([question, blank_partial, follow_up], max_chars=100) == [
        question,
        follow_up,
    ]


def test_a_blocked_exchange_is_left_out_on_both_sides() -> None:
    refused = message("something the filter blocks", n=0)
    blocked = message("", MessageStatus.BLOCKED, n=1)
    earlier_answer = message("an answer", n=1)
    follow_up = message("something else", n=2)
    kept = fit_history([earlier_answer, refused, blocked, follow_up], max_chars=1000)
    assert kept == [earlier_answer, follow_up]
