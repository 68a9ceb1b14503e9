"""SendMessage: the user's message is kept whatever the model does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from application.chat import HistoryBudget, SendMessage, SendMessageRequest, TurnRecorder
from application.chat_settings import SettingsDefaults
from application.errors import (
    ContentFiltered,
    EmptyReply,
    ModelFailure,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from application.ports import (
    AccessClaims,
    ChatRequest,
    ChatTurn,
    RefreshTokenRecord,
    TokenUsage,
)
from domain.chat_settings import ChatSettings
from domain.conversation import ConversationStatus, MessageRole, MessageStatus
from domain.errors import (
    AuthenticationFailed,
    ConversationClosed,
    InvalidInput,
    MessageTooLong,
    NotFound,
)
from domain.quota import QuotaPolicy
from tests.unit.conftest import metering_for, turn_preparation
from tests.unit.in_memory import (
    EPOCH,
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

ALICE, BOB = 1, 2

MakeSend = Callable[..., SendMessage]


@pytest.fixture
def make_send(
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
) -> MakeSend:
    def make(
        budget: HistoryBudget | None = None,
        policy: QuotaPolicy | None = None,
        defaults: SettingsDefaults | None = None,
    ) -> SendMessage:
        steps = turn_preparation(
            uow, catalog, clock, images, budget=budget, policy=policy, defaults=defaults
        )
        return SendMessage(
            steps, TurnRecorder(uow, clock, metering_for(catalog, clock)), chat_model
        )

    return make


@pytest.fixture
def send(make_send: MakeSend) -> SendMessage:
    return make_send()


@pytest.fixture
def conversation_id(uow: FakeUnitOfWork) -> int:
    conversation = uow.seed_conversation(ALICE)
    return conversation.id


def says(
    text: str, conversation_id: int, *, model: str | None = None, image_url: str | None = None
) -> SendMessageRequest:
    return SendMessageRequest(
        owner_id=ALICE,
        conversation_id=conversation_id,
        text=text,
        model=model,
        image_url=image_url,
    )


def turns(request: ChatRequest) -> list[tuple[str, str]]:
    return [(t.role, t.content) for t in request.messages]


def set_settings(
    uow: FakeUnitOfWork,
    *,
    ai_model: str = "fake-small",
    temperature: float = 0.7,
    max_tokens: int = 1024,
) -> None:
    settings = ChatSettings(ai_model=ai_model, temperature=temperature, max_tokens=max_tokens)
    uow.seed_chat_settings(ALICE, settings)


# ---- the happy path ------------------------------------------------------------------------


async def test_a_message_and_its_answer_are_both_stored(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    clock: FakeClock,
    conversation_id: int,
) -> None:
    chat_model.reply = "Bonjour!"
    chat_model.usage = TokenUsage(prompt_tokens=5, completion_tokens=2)
    clock.advance(minutes=1)

    exchange = await send(says("Hello", conversation_id))

    stored = uow.state.messages_of(conversation_id)
    assert [(m.role, m.content, m.status) for m in stored] == [
        (MessageRole.USER, "Hello", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "Bonjour!", MessageStatus.COMPLETED),
    ]
    reply = stored[1]
    assert (reply.model, reply.provider, reply.prompt_tokens, reply.completion_tokens) == (
        "fake-small",
        "fake-provider",
        5,
        2,
    )
    assert reply.error_code is None
    assert exchange.user_message.id == stored[0].id
    assert exchange.ai_message.id == stored[1].id
    assert uow.state.conversations[conversation_id].updated_at == clock.now()


async def test_the_user_message_is_committed_before_the_model_is_called(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    conversation_id: int,
) -> None:
    seen_committed: list[list[tuple[MessageRole, str]]] = []

    def look_at_the_database(request: ChatRequest) -> None:
        seen_committed.append(
            [(m.role, m.content) for m in uow.committed.messages_of(conversation_id)]
        )

    chat_model.on_request = look_at_the_database

    await send(says("Remember me", conversation_id))

    assert len(chat_model.requests) == 1
    assert seen_committed == [[(MessageRole.USER, "Remember me")]]


@pytest.mark.parametrize("failure", [ProviderTimeout(), ProviderUnavailable(), ProviderError()])
async def test_a_provider_failure_keeps_the_message_records_the_failure_and_propagates(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    conversation_id: int,
    failure: ModelFailure,
) -> None:
    chat_model.error = failure

    with pytest.raises(type(failure)) as raised:
        await send(says("Are you there?", conversation_id))

    assert raised.value is failure
    stored = uow.state.messages_of(conversation_id)
    assert [(m.role, m.content, m.status) for m in stored] == [
        (MessageRole.USER, "Are you there?", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "", MessageStatus.FAILED),
    ]
    assert stored[0].error_code is None
    assert stored[1].error_code == failure.code
    assert stored[1].model == "fake-small"
    assert len(chat_model.requests) == 1


async def test_failed_replies_are_not_sent_back_as_history(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    chat_model.error = ProviderTimeout()
    with pytest.raises(ProviderTimeout):
        await send(says("first try", conversation_id))

    chat_model.error = None
    await send(says("second try", conversation_id))

    assert turns(chat_model.requests[-1]) == [("user", "first try"), ("user", "second try")]


# ---- refusals: nothing stored -----------------------------------------------------------------


async def test_a_closed_conversation_takes_no_messages(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel
) -> None:
    closed = uow.seed_conversation(ALICE, status=ConversationStatus.CLOSED)

    with pytest.raises(ConversationClosed):
        await send(says("Hello?", closed.id))

    assert uow.state.messages == {}
    assert uow.state.chat_settings == {}
    assert uow.commits == 0
    assert chat_model.requests == []


async def test_a_too_long_message_is_refused_and_nothing_stored(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    send = make_send(policy=QuotaPolicy(max_message_chars=10))

    with pytest.raises(MessageTooLong) as raised:
        await send(says("x" * 11, conversation_id))

    assert set(raised.value.field_errors) == {"message"}
    assert uow.state.messages == {}
    assert chat_model.requests == []
    await send(says("x" * 10, conversation_id))
    assert len(uow.state.messages) == 2


async def test_the_default_limit_is_4000_characters(
    send: SendMessage, uow: FakeUnitOfWork, conversation_id: int
) -> None:
    with pytest.raises(MessageTooLong):
        await send(says("y" * 4001, conversation_id))
    assert uow.state.messages == {}


async def test_a_blank_message_is_refused(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await send(says("  \n ", conversation_id))
    assert set(raised.value.field_errors) == {"message"}
    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_another_users_conversation_is_not_found(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel
) -> None:
    bobs = uow.seed_conversation(BOB)

    with pytest.raises(NotFound):
        await send(says("Hi Bob", bobs.id))

    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_an_unknown_model_for_the_turn_is_invalid_input(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await send(says("Hi", conversation_id, model="no-such-model"))
    assert set(raised.value.field_errors) == {"model"}
    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_a_withdrawn_settings_model_is_unavailable_and_nothing_stored(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    catalog: FakeModelCatalog,
    conversation_id: int,
) -> None:
    set_settings(uow, ai_model="fake-large")
    catalog.withdraw("fake-large")

    with pytest.raises(ProviderUnavailable):
        await send(says("Hi", conversation_id))

    assert uow.state.messages == {}
    assert chat_model.requests == []


# ---- what the model is asked -------------------------------------------------------------------


async def test_the_model_gets_the_users_temperature_and_max_tokens(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    set_settings(uow, ai_model="fake-large", temperature=0.0, max_tokens=77)

    await send(says("Hi", conversation_id))

    [request] = chat_model.requests
    assert (request.model, request.temperature, request.max_tokens) == ("fake-large", 0.0, 77)


async def test_first_use_creates_settings_from_the_defaults(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    send = make_send(defaults=SettingsDefaults(temperature=1.3, max_tokens=321))

    await send(says("Hi", conversation_id))

    [request] = chat_model.requests
    assert (request.model, request.temperature, request.max_tokens) == ("fake-small", 1.3, 321)
    [stored] = uow.state.chat_settings.values()
    assert stored.user_id == ALICE
    assert stored.settings == ChatSettings(ai_model="fake-small", temperature=1.3, max_tokens=321)


async def test_the_turns_model_beats_the_conversations_which_beats_the_settings(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel
) -> None:
    set_settings(uow, ai_model="fake-small")
    plain = uow.seed_conversation(ALICE)
    pinned = uow.seed_conversation(ALICE, model="fake-large")

    await send(says("a", plain.id))
    await send(says("b", pinned.id))
    await send(says("c", pinned.id, model="fake-vision"))

    assert [r.model for r in chat_model.requests] == ["fake-small", "fake-large", "fake-vision"]


async def test_the_system_prompt_comes_first(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    uow.seed_message(conversation_id, "earlier question")
    uow.seed_message(conversation_id, "earlier answer", role=MessageRole.ASSISTANT)
    send = make_send(budget=HistoryBudget(system_prompt="Be brief."))

    await send(says("now", conversation_id))

    assert turns(chat_model.requests[0]) == [
        ("system", "Be brief."),
        ("user", "earlier question"),
        ("assistant", "earlier answer"),
        ("user", "now"),
    ]


async def test_no_system_turn_without_a_system_prompt(
    send: SendMessage, chat_model: FakeChatModel, conversation_id: int
) -> None:
    await send(says("now", conversation_id))
    assert turns(chat_model.requests[0]) == [("user", "now")]


async def test_history_is_capped_at_max_messages_keeping_the_newest(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    for i in range(6):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        uow.seed_message(conversation_id, f"old {i}", role=role)
    send = make_send(budget=HistoryBudget(max_messages=3, system_prompt="sys"))

    await send(says("new", conversation_id))

    assert turns(chat_model.requests[0]) == [
        ("system", "sys"),
        ("user", "old 4"),
        ("assistant", "old 5"),
        ("user", "new"),
    ]


async def test_a_budget_of_one_message_sends_only_the_new_one(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    uow.seed_message(conversation_id, "old")
    await make_send(budget=HistoryBudget(max_messages=1))(says("new", conversation_id))
    assert turns(chat_model.requests[0]) == [("user", "new")]


async def test_history_is_trimmed_to_max_chars_keeping_the_newest(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    uow.seed_message(conversation_id, "a" * 10)
    uow.seed_message(conversation_id, "b" * 10, role=MessageRole.ASSISTANT)
    uow.seed_message(conversation_id, "c" * 10)
    send = make_send(budget=HistoryBudget(max_chars=25))

    await send(says("d" * 5, conversation_id))

    assert turns(chat_model.requests[0]) == [
        ("assistant", "b" * 10),
        ("user", "c" * 10),
        ("user", "d" * 5),
    ]


async def test_an_oversized_new_message_is_still_sent_alone(
    make_send: MakeSend, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    uow.seed_message(conversation_id, "old")
    send = make_send(budget=HistoryBudget(max_chars=5))

    await send(says("n" * 20, conversation_id))

    assert turns(chat_model.requests[0]) == [("user", "n" * 20)]


async def test_history_only_comes_from_this_conversation(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    elsewhere = uow.seed_conversation(ALICE)
    uow.seed_message(elsewhere.id, "other conversation")
    uow.seed_message(conversation_id, "this conversation")

    await send(says("now", conversation_id))

    assert turns(chat_model.requests[0]) == [("user", "this conversation"), ("user", "now")]


async def test_an_image_travels_with_its_turn(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    url = "https://example.com/cat.png"
    await send(says("What is this?", conversation_id, model="fake-vision", image_url=url))

    # The image was fetched when sent and travels as data, as every provider takes it.
    fetched = "data:image/png;base64,ZmV0Y2hlZA=="
    assert chat_model.requests[0].messages[-1] == ChatTurn(
        role="user", content="What is this?", image_url=fetched
    )
    stored = uow.state.messages_of(conversation_id)[0]
    assert (stored.image_url, stored.image_data) == (url, fetched)


async def test_an_earlier_image_is_not_fetched_again(
    send: SendMessage,
    chat_model: FakeChatModel,
    images: FakeImageInspector,
    conversation_id: int,
) -> None:
    url = "https://example.com/cat.png"
    await send(says("What is this?", conversation_id, model="fake-vision", image_url=url))
    images.refused.add(url)  # the signed URL has expired since

    await send(says("And its colour?", conversation_id, model="fake-vision"))

    assert images.fetched == [url]
    first_turn = chat_model.requests[1].messages[0]
    assert first_turn.image_url == "data:image/png;base64,ZmV0Y2hlZA=="


async def test_an_image_type_the_model_does_not_take_is_refused_before_the_model_is_asked(
    make_send: MakeSend,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    images: FakeImageInspector,
    conversation_id: int,
) -> None:
    url = "https://example.com/dancing.gif"
    images.types[url] = "image/gif"

    with pytest.raises(InvalidInput) as raised:
        await make_send()(says("Look", conversation_id, model="fake-vision", image_url=url))

    assert "GIF" in raised.value.field_errors["image_url"][0]
    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_history_images_are_left_out_for_a_model_without_vision(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    await send(
        says("Look", conversation_id, model="fake-vision", image_url="https://example.com/a.png")
    )

    await send(says("Now in words", conversation_id, model="fake-small"))

    assert [turn.image_url for turn in chat_model.requests[1].messages] == [None, None, None]


async def test_an_image_for_a_model_without_vision_is_refused_and_nothing_stored(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await send(says("What is this?", conversation_id, image_url="https://example.com/a.png"))

    assert set(raised.value.field_errors) == {"image_url"}
    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_an_image_the_inspector_refuses_is_not_stored(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    images: FakeImageInspector,
    conversation_id: int,
) -> None:
    url = "http://127.0.0.1/private.png"
    images.refused.add(url)

    with pytest.raises(InvalidInput) as raised:
        await send(says("Look", conversation_id, model="fake-vision", image_url=url))

    assert set(raised.value.field_errors) == {"image_url"}
    assert uow.state.messages == {}
    assert chat_model.requests == []


async def test_the_reply_time_moves_the_conversation_forward(
    send: SendMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    clock: FakeClock,
    conversation_id: int,
) -> None:
    start = clock.now()

    def take_three_seconds(request: ChatRequest) -> None:
        clock.advance(seconds=3)

    chat_model.on_request = take_three_seconds

    await send(says("slow answer please", conversation_id))

    user_message, reply = uow.state.messages_of(conversation_id)
    assert user_message.created_at == start
    assert reply.created_at == start + timedelta(seconds=3)
    assert uow.state.conversations[conversation_id].updated_at == reply.created_at


async def test_a_blocked_answer_is_stored_as_blocked_and_reported_not_an_empty_success(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    chat_model.reply, chat_model.finish_reason = "", "content_filter"

    with pytest.raises(ContentFiltered):
        await send(says("something the filter blocks", conversation_id))

    user_message, reply = uow.state.messages_of(conversation_id)
    assert user_message.content == "something the filter blocks"
    assert (reply.status, reply.error_code) == (MessageStatus.BLOCKED, "content_filtered")
    assert reply.completion_tokens == 7  # billed all the same


async def test_a_reply_with_no_text_is_a_failure_with_its_own_code(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    # A thinking model that spent its whole budget thinking answers "length" and no text.
    chat_model.reply, chat_model.finish_reason = "", "length"
    chat_model.usage = TokenUsage(prompt_tokens=5, completion_tokens=800, reasoning_tokens=800)

    with pytest.raises(EmptyReply):
        await send(says("think hard", conversation_id))

    reply = uow.state.messages_of(conversation_id)[1]
    assert (reply.status, reply.error_code) == (MessageStatus.FAILED, "empty_reply")
    assert (reply.completion_tokens, reply.reasoning_tokens) == (800, 800)


async def test_reasoning_is_kept_apart_from_the_answer(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    chat_model.reply, chat_model.reasoning = "42.", "Let me think about this."

    exchange = await send(says("The answer?", conversation_id))

    assert exchange.ai_message.content == "42."
    assert uow.state.messages_of(conversation_id)[1].reasoning == "Let me think about this."


async def test_the_providers_words_are_kept_with_a_failed_reply(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, conversation_id: int
) -> None:
    chat_model.error = ProviderUnavailable("Model provider OpenAI: HTTP 429: Rate limit reached")

    with pytest.raises(ProviderUnavailable):
        await send(says("hello", conversation_id))

    reply = uow.state.messages_of(conversation_id)[1]
    assert reply.error_message == "Model provider OpenAI: HTTP 429: Rate limit reached"


# ---- the caller, confirmed in the turn's first transaction ---------------------------------

DAY_ONE = EPOCH + timedelta(days=1)  # when the tokens below were issued


@pytest.mark.parametrize("is_active", [True, False])
async def test_an_unconfirmed_caller_is_confirmed_before_anything_is_stored(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel, is_active: bool
) -> None:
    user = uow.seed_user("carol", is_active=is_active)
    conversation = uow.seed_conversation(user.id)
    command = _unconfirmed(conversation.id, AccessClaims(user_id=user.id, issued_at=DAY_ONE))

    if is_active:
        await send(command)
        assert len(uow.state.messages_of(conversation.id)) == 2
        return
    with pytest.raises(AuthenticationFailed):
        await send(command)
    assert uow.state.messages_of(conversation.id) == []
    assert chat_model.requests == []
    assert uow.commits == 0


async def test_a_token_issued_before_signing_out_everywhere_stores_nothing(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel
) -> None:
    user = uow.seed_user("dave")
    uow.state.users[user.id].credentials_valid_after = EPOCH + timedelta(days=2)
    conversation = uow.seed_conversation(user.id)
    stale = AccessClaims(user_id=user.id, issued_at=DAY_ONE)

    with pytest.raises(AuthenticationFailed):
        await send(_unconfirmed(conversation.id, stale))
    assert uow.state.messages_of(conversation.id) == []
    assert chat_model.requests == []


async def test_a_token_of_a_revoked_login_stores_nothing(
    send: SendMessage, uow: FakeUnitOfWork, chat_model: FakeChatModel
) -> None:
    user = uow.seed_user("erin")
    conversation = uow.seed_conversation(user.id)
    uow.state.refresh_tokens["jti-1"] = RefreshTokenRecord(
        jti="jti-1",
        user_id=user.id,
        family_id="login-1",
        expires_at=EPOCH + timedelta(days=30),
        revoked_at=EPOCH + timedelta(days=2),
    )
    claims = AccessClaims(user_id=user.id, issued_at=DAY_ONE, family_id="login-1")

    with pytest.raises(AuthenticationFailed):
        await send(_unconfirmed(conversation.id, claims))
    assert uow.state.messages_of(conversation.id) == []
    assert chat_model.requests == []


def _unconfirmed(conversation_id: int, claims: AccessClaims) -> SendMessageRequest:
    return SendMessageRequest(
        owner_id=claims.user_id,
        conversation_id=conversation_id,
        text="Hello",
        unconfirmed_caller=claims,
    )
