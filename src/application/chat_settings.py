"""A user's chat settings: the model, temperature and answer length used for chats."""

from __future__ import annotations

from dataclasses import dataclass

from application.model_choice import unavailable_model
from application.ports import ModelCatalog, UnitOfWork
from domain.chat_settings import ChatSettings, UserChatSettings
from domain.errors import InvalidInput, NotFound


@dataclass(frozen=True, kw_only=True)
class SettingsDefaults:
    temperature: float = 0.7
    max_tokens: int = 1024


async def settings_of(
    uow: UnitOfWork, user_id: int, catalog: ModelCatalog, defaults: SettingsDefaults
) -> UserChatSettings:
    """The user's settings, created from the defaults the first time they are needed.

    The caller commits."""
    stored = await uow.chat_settings.for_user(user_id)
    if stored is not None:
        return stored
    fresh = ChatSettings(
        ai_model=catalog.default_model,
        temperature=defaults.temperature,
        max_tokens=defaults.max_tokens,
    )
    return await uow.chat_settings.add(user_id, fresh)


class GetChatSettings:
    """The user's chat settings; every user has exactly one, made on first use."""

    def __init__(self, uow: UnitOfWork, catalog: ModelCatalog, defaults: SettingsDefaults) -> None:
        self._uow = uow
        self._catalog = catalog
        self._defaults = defaults

    async def __call__(self, user_id: int) -> UserChatSettings:
        async with self._uow as uow:
            settings = await settings_of(uow, user_id, self._catalog, self._defaults)
            await uow.commit()
        return settings


@dataclass(frozen=True, kw_only=True)
class UpdateChatSettingsRequest:
    user_id: int
    settings_id: int
    ai_model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class UpdateChatSettings:
    """Change some or all of the user's chat settings.

    Temperature is 0-2, max_tokens at least 1, and the model must be one the catalogue
    can serve now; every failing field is reported and nothing is saved. Settings of
    another user are not found."""

    def __init__(self, uow: UnitOfWork, catalog: ModelCatalog, defaults: SettingsDefaults) -> None:
        self._uow = uow
        self._catalog = catalog
        self._defaults = defaults

    async def __call__(self, command: UpdateChatSettingsRequest) -> UserChatSettings:
        async with self._uow as uow:
            current = await settings_of(uow, command.user_id, self._catalog, self._defaults)
            if current.id != command.settings_id:
                raise NotFound("Chat settings not found.")
            errors = unavailable_model(self._catalog, "ai_model", command.ai_model)
            try:
                changed = current.settings.changed(
                    ai_model=command.ai_model,
                    temperature=command.temperature,
                    max_tokens=command.max_tokens,
                )
            except InvalidInput as invalid:
                raise InvalidInput({**invalid.field_errors, **errors}) from None
            if errors:
                raise InvalidInput(errors)
            current.settings = changed
            await uow.chat_settings.save(current)
            await uow.commit()
        return current
