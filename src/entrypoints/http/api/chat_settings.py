"""``/api/chat-setting/`` (DRF style): the caller's model, temperature and max_tokens."""

from __future__ import annotations

from litestar import Controller, get, patch, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from application.chat_settings import GetChatSettings, UpdateChatSettings, UpdateChatSettingsRequest
from domain.users import User
from entrypoints.http.api.schemas import (
    ChatSettingOut,
    ChatSettingPatch,
    ChatSettingPut,
    chat_setting_out,
)
from entrypoints.http.bodies import CheckedBody


class ChatSettingsController(Controller):
    path = "/chat-setting"
    tags = ["chat settings (/api)"]

    @get("/", operation_id="api_get_chat_setting")
    async def get_setting(
        self, user: NamedDependency[User], get_chat_settings: NamedDependency[GetChatSettings]
    ) -> ChatSettingOut:
        """Your chat settings (created with the defaults on first use)."""
        return chat_setting_out(await get_chat_settings(user.id))

    @put(
        "/{setting_id:int}/",
        operation_id="api_put_chat_setting",
        dto=CheckedBody[ChatSettingPut],
        return_dto=None,
    )
    async def replace_setting(
        self,
        setting_id: FromPath[int],
        data: JSONBody[ChatSettingPut],
        user: NamedDependency[User],
        update_chat_settings: NamedDependency[UpdateChatSettings],
    ) -> ChatSettingOut:
        """Replace all three settings. temperature 0-2, max_tokens >= 1, an available model."""
        updated = await update_chat_settings(
            UpdateChatSettingsRequest(
                user_id=user.id,
                settings_id=setting_id,
                ai_model=data.ai_model,
                temperature=data.temperature,
                max_tokens=data.max_tokens,
            )
        )
        return chat_setting_out(updated)

    @patch(
        "/{setting_id:int}/",
        operation_id="api_patch_chat_setting",
        dto=CheckedBody[ChatSettingPatch],
        return_dto=None,
    )
    async def change_setting(
        self,
        setting_id: FromPath[int],
        data: JSONBody[ChatSettingPatch],
        user: NamedDependency[User],
        update_chat_settings: NamedDependency[UpdateChatSettings],
    ) -> ChatSettingOut:
        """Change only the settings given; the same rules as PUT apply."""
        updated = await update_chat_settings(
            UpdateChatSettingsRequest(
                user_id=user.id,
                settings_id=setting_id,
                ai_model=data.ai_model,
                temperature=data.temperature,
                max_tokens=data.max_tokens,
            )
        )
        return chat_setting_out(updated)
