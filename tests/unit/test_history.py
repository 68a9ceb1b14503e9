"""fit_history: the newest messages that fit the character budget, oldest first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from in_memory import EPOCH

from domain.conversation import Message, MessageRole, MessageStatus
from domain.history import fit_history


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


def chars(messages: list[Message]) -> int:
    return sum(len(m.content) for m in messages)


@settings(max_examples=150, deadline=None)
@given(messages=conversations(), budget=budgets)
def test_history_is_the_largest_suffix_of_usable_messages_within_budget(
    messages: list[Message], budget: int
) -> None:
    usable = [m for m in messages if m.status is not MessageStatus.FAILED]
    kept = fit_history(messages, budget)

    # A suffix of the usable messages, in order (compared by identity).
    assert [id(m) for m in kept] == [id(m) for m in usable[len(usable) - len(kept) :]]
    assert all(m.status is not MessageStatus.FAILED for m in kept)
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
