"""Logging in with an outside identity provider (WeChat website login, OAuth 2.0 code flow)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from application.accounts import SignedIn, start_token_family
from application.errors import OAuthNotConfigured, OAuthStateInvalid
from application.ports import (
    Clock,
    OAuthIdentityProvider,
    OAuthStates,
    PendingLogin,
    TokenIssuer,
    UnitOfWork,
)
from domain.errors import AuthenticationFailed, InvalidInput
from domain.users import UNUSABLE_PASSWORD_PREFIX, NewUser

STATE_TTL_SECONDS = 600


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class LoginStarted:
    url: str
    state: str
    binding: str  # kept by the client (a cookie); the callback must present it again


class BeginOAuthLogin:
    """Make the provider's authorization URL with a fresh ``state``.

    The state is unguessable, single use, valid for 10 minutes, and bound to the client
    that asked for it (a secret the client keeps, stored here only as a digest). Asked
    by a logged-in user, the login links the provider identity to that account."""

    def __init__(self, provider: OAuthIdentityProvider, states: OAuthStates) -> None:
        self._provider = provider
        self._states = states

    async def __call__(self, link_user_id: int | None = None) -> LoginStarted:
        if not self._provider.configured:
            raise OAuthNotConfigured(f"{self._provider.name} login is not configured.")
        state, binding = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        await self._states.put(
            state,
            PendingLogin(binding_digest=_digest(binding), link_user_id=link_user_id),
            STATE_TTL_SECONDS,
        )
        return LoginStarted(
            url=self._provider.authorization_url(state), state=state, binding=binding
        )


@dataclass(frozen=True, kw_only=True)
class OAuthCallback:
    code: str
    state: str
    binding: str | None


class CompleteOAuthLogin:
    """Finish the login: check the state, exchange the code, find or create the user.

    A known identity logs its user in; an unknown one creates an account (no password,
    username ``wx_...``), or is linked to the logged-in user who started the flow.
    Bad, expired, reused or foreign state is refused before the provider is asked;
    nothing is created when anything fails."""

    def __init__(
        self,
        provider: OAuthIdentityProvider,
        states: OAuthStates,
        uow: UnitOfWork,
        tokens: TokenIssuer,
        clock: Clock,
    ) -> None:
        self._provider = provider
        self._states = states
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    async def __call__(self, callback: OAuthCallback) -> SignedIn:
        if not self._provider.configured:
            raise OAuthNotConfigured(f"{self._provider.name} login is not configured.")
        if not callback.code:
            raise InvalidInput({"code": ["This field is required."]})
        pending = await self._states.take(callback.state) if callback.state else None
        if (
            pending is None
            or callback.binding is None
            or not secrets.compare_digest(pending.binding_digest, _digest(callback.binding))
        ):
            raise OAuthStateInvalid()
        account = await self._provider.identify(callback.code)
        now = self._clock.now()
        async with self._uow as uow:
            user_id = await uow.identities.user_id_for(account.provider, account.subject)
            if pending.link_user_id is not None:
                if user_id is not None and user_id != pending.link_user_id:
                    raise InvalidInput(
                        {"wechat": ["This WeChat account is linked to another user."]}
                    )
                if user_id is None:
                    await uow.identities.link(
                        pending.link_user_id, account.provider, account.subject, now
                    )
                user_id = pending.link_user_id
            if user_id is None:
                user = await uow.users.add(
                    NewUser(
                        username=f"wx_{secrets.token_hex(6)}",
                        email="",
                        password_hash=UNUSABLE_PASSWORD_PREFIX + secrets.token_hex(8),
                        date_joined=now,
                    )
                )
                await uow.identities.link(user.id, account.provider, account.subject, now)
            else:
                found = await uow.users.get(user_id)
                if found is None or not found.is_active:
                    raise AuthenticationFailed("User inactive or deleted.")
                user = found
            signed_in = await start_token_family(uow, self._tokens, user)
            await uow.commit()
        return signed_in
