"""Who a request is: access tokens, browser sessions and API tokens resolved to an active
user, or 401."""

from __future__ import annotations

from datetime import datetime

from application.ports import AccessClaims, ApiTokenCodec, OwnerStanding, TokenIssuer, UnitOfWork
from domain.errors import AuthenticationFailed
from domain.users import User, credentials_count

INACTIVE = "User inactive or deleted."
SIGNED_OUT = "This session was signed out; log in again."


class Authenticate:
    """Resolve a request's credentials to an active user, or fail with 401.

    A deactivated user fails at once, and so does anything issued before the user
    logged out everywhere."""

    def __init__(self, uow: UnitOfWork, tokens: TokenIssuer, codec: ApiTokenCodec) -> None:
        self._uow = uow
        self._tokens = tokens
        self._codec = codec

    async def with_access_token(self, token: str) -> User:
        claims = self.access_claims(token)
        async with self._uow as uow:
            return await confirmed_user(uow, claims)

    def access_claims(self, token: str) -> AccessClaims:
        """What a signed, unexpired access token says, before its user row is read: 401
        for anything else. ``confirmed_user`` must follow before the caller's work is done."""
        return self._tokens.access_claims(token)

    async def with_session(self, user_id: int, started_at: datetime) -> User:
        return await self._user(user_id, started_at)

    async def with_api_token(self, token: str) -> User:
        async with self._uow as uow:
            user_id = await uow.api_tokens.user_id_for(self._codec.digest(token))
            if user_id is None:
                raise AuthenticationFailed("Invalid token.")
            return _active(await uow.users.get(user_id))

    async def _user(self, user_id: int, issued_at: datetime) -> User:
        async with self._uow as uow:
            user = _active(await uow.users.get(user_id))
        if not user.accepts_credentials_issued_at(issued_at):
            raise AuthenticationFailed("This session was signed out; log in again.")
        return user


async def confirmed_user(uow: UnitOfWork, claims: AccessClaims) -> User:
    """The active user an access token's claims name, read in ``uow``'s open transaction
    (so the work a request asked for can do it in its own first one), or 401."""
    if claims.family_id is None:
        user = _active(await uow.users.get(claims.user_id))
        login_revoked = False
    else:
        # A replayed refresh token revokes its login: that login's access tokens stop now,
        # not when they expire.
        found, login_revoked = await uow.users.get_with_login(claims.user_id, claims.family_id)
        user = _active(found)
    if login_revoked or not user.accepts_credentials_issued_at(claims.issued_at):
        raise AuthenticationFailed(SIGNED_OUT)
    return user


def confirm_standing(owner: OwnerStanding, claims: AccessClaims) -> None:
    """``confirmed_user``'s rules, on the standing a turn read with its conversation."""
    if not owner.is_active:
        raise AuthenticationFailed(INACTIVE)
    if owner.login_revoked or not credentials_count(
        owner.credentials_valid_after, claims.issued_at
    ):
        raise AuthenticationFailed(SIGNED_OUT)


def _active(user: User | None) -> User:
    if user is None:
        raise AuthenticationFailed("User not found.")
    if not user.is_active:
        raise AuthenticationFailed(INACTIVE)
    return user
