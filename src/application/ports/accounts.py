"""Persistence ports for accounts: users, their chat settings, and the credentials that
sign them in (refresh tokens, API tokens, linked external identities)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.chat_settings import ChatSettings, UserChatSettings
from domain.users import NewUser, User


class Users(Protocol):
    async def add(self, user: NewUser) -> User:
        """Store a new user, with its id; a taken username is InvalidInput."""
        ...

    async def revoke_credentials(self, user_id: int, when: datetime) -> None:
        """Set credentials_valid_after: tokens and sessions issued earlier stop working."""
        ...

    async def get(self, user_id: int) -> User | None: ...

    async def get_with_login(self, user_id: int, family_id: str) -> tuple[User | None, bool]:
        """The user, and whether the login (refresh-token family) ``family_id`` was revoked,
        in one query: what every request with an access token reads."""
        ...

    async def by_username(self, username: str) -> User | None: ...


class ChatSettingsStore(Protocol):
    async def for_user(self, user_id: int) -> UserChatSettings | None: ...

    async def add(self, user_id: int, settings: ChatSettings) -> UserChatSettings:
        """Store the user's first settings; if a concurrent request stored some first,
        return those instead."""
        ...

    async def save(self, settings: UserChatSettings) -> None: ...


@dataclass(frozen=True)
class RefreshTokenRecord:
    jti: str
    user_id: int
    family_id: str
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class RefreshTokens(Protocol):
    async def add(self, record: RefreshTokenRecord) -> None: ...

    async def get(self, jti: str) -> RefreshTokenRecord | None: ...

    async def mark_used(self, jti: str, when: datetime) -> bool:
        """Mark an unused token used; False if it was already used (a concurrent refresh)."""
        ...

    async def revoke_family(self, family_id: str, when: datetime) -> None: ...

    async def revoke_all_of(self, user_id: int, when: datetime) -> None: ...


class ApiTokens(Protocol):
    async def add(self, user_id: int, token_digest: str, created_at: datetime) -> None: ...

    async def user_id_for(self, token_digest: str) -> int | None: ...

    async def revoke(self, token_digest: str) -> None: ...

    async def revoke_all(self, user_id: int) -> None: ...


class ExternalIdentities(Protocol):
    async def user_id_for(self, provider: str, subject: str) -> int | None: ...

    async def link(self, user_id: int, provider: str, subject: str, when: datetime) -> None:
        """A subject already linked (to anyone) is InvalidInput."""
        ...
