"""Identity ports: passwords, tokens, API tokens, outside identity providers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def burn_time(self, password: str) -> None:
        """Spend what a verify costs, so an unknown username answers like a wrong password."""
        ...


@dataclass(frozen=True, kw_only=True)
class IssuedTokens:
    access: str
    refresh: str
    refresh_jti: str
    refresh_expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class AccessClaims:
    user_id: int
    issued_at: datetime
    family_id: str | None = None  # the login it came from (None: tokens from before 0.x)


@dataclass(frozen=True, kw_only=True)
class RefreshClaims:
    user_id: int
    jti: str
    family_id: str


class TokenIssuer(Protocol):
    def issue(self, user_id: int, family_id: str) -> IssuedTokens: ...

    def access_claims(self, token: str) -> AccessClaims:
        """Who an access token was issued to, and when; AuthenticationFailed if invalid."""
        ...

    def refresh_claims(self, token: str) -> RefreshClaims:
        """AuthenticationFailed when the token is not a valid, unexpired refresh token."""
        ...

    def new_family_id(self) -> str: ...


class ApiTokenCodec(Protocol):
    def new_token(self) -> str: ...

    def digest(self, token: str) -> str:
        """What is stored: tokens never are."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExternalAccount:
    """An identity vouched for by an outside provider (WeChat: unionid, else openid)."""

    provider: str
    subject: str
    display_name: str = ""


class OAuthIdentityProvider(Protocol):
    name: str

    @property
    def configured(self) -> bool: ...

    def authorization_url(self, state: str) -> str: ...

    async def identify(self, code: str) -> ExternalAccount:
        """Exchange an authorization code; InvalidInput for a bad code, a ModelFailure-like
        OAuthProviderError when the provider fails."""
        ...


@dataclass(frozen=True, kw_only=True)
class PendingLogin:
    binding_digest: str
    link_user_id: int | None = None


class OAuthStates(Protocol):
    async def put(self, state: str, pending: PendingLogin, ttl_seconds: int) -> None: ...

    async def take(self, state: str) -> PendingLogin | None:
        """Remove and return; None if unknown, expired or already taken (single use)."""
        ...
