"""GetChatSettings / UpdateChatSettings: one settings row per user, validated as a whole."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from application.chat_settings import (
    GetChatSettings,
    SettingsDefaults,
    UpdateChatSettings,
    UpdateChatSettingsRequest,
)
from domain.chat_settings import ChatSettings, UserChatSettings
from domain.errors import InvalidInput, NotFound
from tests.unit.in_memory import FakeModelCatalog, FakeUnitOfWork

ALICE, BOB = 1, 2
DEFAULTS = SettingsDefaults(temperature=0.7, max_tokens=1024)


@pytest.fixture
def get_settings(uow: FakeUnitOfWork, catalog: FakeModelCatalog) -> GetChatSettings:
    return GetChatSettings(uow, catalog, DEFAULTS)


@pytest.fixture
def update(uow: FakeUnitOfWork, catalog: FakeModelCatalog) -> UpdateChatSettings:
    return UpdateChatSettings(uow, catalog, DEFAULTS)


@pytest.fixture
async def alices(get_settings: GetChatSettings) -> UserChatSettings:
    return await get_settings(ALICE)


async def test_settings_are_made_from_the_defaults_once(
    get_settings: GetChatSettings, uow: FakeUnitOfWork
) -> None:
    first = await get_settings(ALICE)
    second = await get_settings(ALICE)

    assert first.id == second.id
    assert first.settings == ChatSettings(ai_model="fake-small", temperature=0.7, max_tokens=1024)
    assert list(uow.state.chat_settings.values()) == [first]


async def test_an_update_changes_only_the_given_fields_and_is_stored(
    update: UpdateChatSettings, uow: FakeUnitOfWork, alices: UserChatSettings
) -> None:

    result = await update(
        UpdateChatSettingsRequest(user_id=ALICE, settings_id=alices.id, temperature=0.0)
    )

    expected = ChatSettings(ai_model="fake-small", temperature=0.0, max_tokens=1024)
    assert result.settings == expected
    assert uow.state.chat_settings[alices.id].settings == expected

    await update(
        UpdateChatSettingsRequest(
            user_id=ALICE, settings_id=alices.id, ai_model="fake-large", max_tokens=5
        )
    )
    assert uow.state.chat_settings[alices.id].settings == ChatSettings(
        ai_model="fake-large", temperature=0.0, max_tokens=5
    )


async def test_every_failing_field_is_reported_including_an_unknown_model(
    update: UpdateChatSettings, uow: FakeUnitOfWork, alices: UserChatSettings
) -> None:
    before = copy.deepcopy(uow.state.chat_settings)
    commits = uow.commits

    with pytest.raises(InvalidInput) as raised:
        await update(
            UpdateChatSettingsRequest(
                user_id=ALICE,
                settings_id=alices.id,
                ai_model="no-such-model",
                temperature=2.5,
                max_tokens=0,
            )
        )

    assert set(raised.value.field_errors) == {"ai_model", "temperature", "max_tokens"}
    assert "no-such-model" in raised.value.field_errors["ai_model"][0]
    assert uow.state.chat_settings == before
    assert uow.commits == commits


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"ai_model": "no-such-model"}, {"ai_model"}),
        ({"ai_model": ""}, {"ai_model"}),
        ({"ai_model": "   "}, {"ai_model"}),
        ({"temperature": -0.1}, {"temperature"}),
        ({"temperature": math.nan}, {"temperature"}),
        ({"temperature": math.inf}, {"temperature"}),
        ({"max_tokens": 1_000_001}, {"max_tokens"}),
        ({"ai_model": "no-such-model", "temperature": 1.0}, {"ai_model"}),
        ({"ai_model": "fake-large", "temperature": 9.0}, {"temperature"}),
        ({"temperature": 3.0, "max_tokens": -1}, {"temperature", "max_tokens"}),
        ({"ai_model": "nope", "max_tokens": 0}, {"ai_model", "max_tokens"}),
    ],
)
async def test_any_failure_saves_nothing(
    update: UpdateChatSettings,
    uow: FakeUnitOfWork,
    alices: UserChatSettings,
    change: dict[str, Any],
    failing: set[str],
) -> None:
    before = copy.deepcopy(uow.state.chat_settings)

    with pytest.raises(InvalidInput) as raised:
        await update(UpdateChatSettingsRequest(user_id=ALICE, settings_id=alices.id, **change))

    assert set(raised.value.field_errors) == failing
    assert uow.state.chat_settings == before


async def test_a_model_withdrawn_from_the_catalogue_cannot_be_chosen(
    update: UpdateChatSettings, catalog: FakeModelCatalog, alices: UserChatSettings
) -> None:
    catalog.withdraw("fake-large")
    with pytest.raises(InvalidInput) as raised:
        await update(
            UpdateChatSettingsRequest(user_id=ALICE, settings_id=alices.id, ai_model="fake-large")
        )
    assert set(raised.value.field_errors) == {"ai_model"}


async def test_another_users_settings_are_not_found(
    update: UpdateChatSettings,
    get_settings: GetChatSettings,
    uow: FakeUnitOfWork,
    alices: UserChatSettings,
) -> None:
    bobs = await get_settings(BOB)
    before = copy.deepcopy(uow.state.chat_settings)

    with pytest.raises(NotFound):
        await update(UpdateChatSettingsRequest(user_id=ALICE, settings_id=bobs.id, temperature=1.9))
    with pytest.raises(NotFound):
        await update(UpdateChatSettingsRequest(user_id=ALICE, settings_id=12345, temperature=1.9))

    assert uow.state.chat_settings == before
    assert uow.state.chat_settings[bobs.id].settings.temperature == 0.7
