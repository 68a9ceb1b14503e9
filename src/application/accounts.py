"""Accounts: registration, login, token refresh, API tokens and request authentication."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import (
    ApiTokenCodec,
    Clock,
    PasswordHasher,
    RefreshTokenRecord,
    TokenIssuer,
    UnitOfWork,
)
from domain.errors import AuthenticationFailed, UsernameTaken
from domain.users import NewUser, User, normalized_username, validate_registration

BAD_CREDENTIALS = "No active account found with the given credentials."
BAD_REFRESH = "Token is invalid or expired."


@dataclass(frozen=True, kw_only=True)
class RegisterUserRequest:
    username: str
    email: str
    password: str
    is_staff: bool = False


@dataclass(frozen=True, kw_only=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    user: User
    access: str
    refresh: str


async def start_token_family(uow: UnitOfWork, tokens: TokenIssuer, user: User) -> SignedIn:
    issued = tokens.issue(user.id, tokens.new_family_id())
    claims = tokens.refresh_claims(issued.refresh)
    await uow.refresh_tokens.add(
        RefreshTokenRecord(
            jti=issued.refresh_jti,
            user_id=user.id,
            family_id=claims.family_id,
            expires_at=issued.refresh_expires_at,
        )
    )
    return SignedIn(user=user, access=issued.access, refresh=issued.refresh)


class RegisterUser:
    """Create an account and sign it in.

    Username (letters/digits/@.+-_, NFKC-normalised, unique whatever its case), email and
    password (8+ characters with a visible one, not entirely numeric, not the username)
    are checked together and every failing field is reported. The password is stored
    only as an argon2id hash."""

    def __init__(
        self, uow: UnitOfWork, hasher: PasswordHasher, tokens: TokenIssuer, clock: Clock
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock

    async def __call__(self, command: RegisterUserRequest) -> SignedIn:
        username = normalized_username(command.username)
        validate_registration(username, command.email, command.password)
        password_hash = await self._hasher.hash(command.password)
        async with self._uow as uow:
            if await uow.users.by_username(username) is not None:
                raise UsernameTaken()
            user = await uow.users.add(
                NewUser(
                    username=username,
                    email=command.email,
                    password_hash=password_hash,
                    date_joined=self._clock.now(),
                    is_staff=command.is_staff,
                )
            )
            signed_in = await start_token_family(uow, self._tokens, user)
            await uow.commit()
        return signed_in


async def _check_credentials(
    uow: UnitOfWork, hasher: PasswordHasher, credentials: Credentials
) -> User:
    """The user the credentials belong to, or AuthenticationFailed. The password is
    checked after the read's transaction has ended: argon2 takes tens of milliseconds,
    and on SQLite every transaction holds the database's write lock."""
    async with uow as reading:
        user = await reading.users.by_username(credentials.username)
    if user is None:
        await hasher.burn_time(credentials.password)
        raise AuthenticationFailed(BAD_CREDENTIALS)
    if not user.has_password:
        await hasher.burn_time(credentials.password)
        raise AuthenticationFailed(BAD_CREDENTIALS)
    if not await hasher.verify(user.password_hash, credentials.password) or not user.is_active:
        raise AuthenticationFailed(BAD_CREDENTIALS)
    return user


class LogIn:
    """Exchange a username and password for an access and a refresh token.

    An unknown username and a wrong password get the same answer in similar time."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, tokens: TokenIssuer) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens

    async def __call__(self, credentials: Credentials) -> SignedIn:
        user = await _check_credentials(self._uow, self._hasher, credentials)
        async with self._uow as uow:
            signed_in = await start_token_family(uow, self._tokens, user)
            await uow.commit()
        return signed_in


@dataclass(frozen=True, kw_only=True)
class RefreshedTokens:
    access: str
    refresh: str


class RefreshAccessToken:
    """Trade a refresh token for a new access token and a new refresh token.

    Refresh tokens rotate: each works once. Presenting a used one again means it was
    stolen or replayed, so the whole family descending from that login is revoked."""

    def __init__(self, uow: UnitOfWork, tokens: TokenIssuer, clock: Clock) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    async def __call__(self, refresh_token: str) -> RefreshedTokens:
        claims = self._tokens.refresh_claims(refresh_token)
        now = self._clock.now()
        async with self._uow as uow:
            record = await uow.refresh_tokens.get(claims.jti)
            if record is None or record.revoked_at is not None:
                raise AuthenticationFailed(BAD_REFRESH)
            if record.used_at is not None or not await uow.refresh_tokens.mark_used(
                claims.jti, now
            ):
                await uow.refresh_tokens.revoke_family(record.family_id, now)
                await uow.commit()
                raise AuthenticationFailed(BAD_REFRESH)
            user = await uow.users.get(record.user_id)
            if user is None or not user.is_active:
                raise AuthenticationFailed(BAD_REFRESH)
            issued = self._tokens.issue(record.user_id, record.family_id)
            await uow.refresh_tokens.add(
                RefreshTokenRecord(
                    jti=issued.refresh_jti,
                    user_id=record.user_id,
                    family_id=record.family_id,
                    expires_at=issued.refresh_expires_at,
                )
            )
            await uow.commit()
        return RefreshedTokens(access=issued.access, refresh=issued.refresh)


class IssueApiToken:
    """Create a long-lived API token for ``Authorization: Token <token>``.

    Each call creates a new token; only its digest is stored, so it is shown once."""

    def __init__(
        self, uow: UnitOfWork, hasher: PasswordHasher, codec: ApiTokenCodec, clock: Clock
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._codec = codec
        self._clock = clock

    async def __call__(self, credentials: Credentials) -> str:
        user = await _check_credentials(self._uow, self._hasher, credentials)
        async with self._uow as uow:
            token = self._codec.new_token()
            await uow.api_tokens.add(user.id, self._codec.digest(token), self._clock.now())
            await uow.commit()
        return token


@dataclass(frozen=True, kw_only=True)
class RevokeApiTokenRequest:
    user_id: int
    presented_token: str | None = None


class RevokeApiToken:
    """Revoke the API token the request was made with, or, when the request was made
    another way (JWT), every API token of the user."""

    def __init__(self, uow: UnitOfWork, codec: ApiTokenCodec) -> None:
        self._uow = uow
        self._codec = codec

    async def __call__(self, command: RevokeApiTokenRequest) -> None:
        async with self._uow as uow:
            if command.presented_token is None:
                await uow.api_tokens.revoke_all(command.user_id)
            else:
                await uow.api_tokens.revoke(self._codec.digest(command.presented_token))
            await uow.commit()


class VerifyPassword:
    """Check a username and password (for browser sessions): the user, or 401."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher) -> None:
        self._uow = uow
        self._hasher = hasher

    async def __call__(self, credentials: Credentials) -> User:
        return await _check_credentials(self._uow, self._hasher, credentials)


class LogOutEverywhere:
    """Sign the user out on every device: every refresh token and API token is revoked,
    and access tokens and browser sessions issued until now stop working at once."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, user_id: int) -> None:
        now = self._clock.now()
        async with self._uow as uow:
            await uow.users.revoke_credentials(user_id, now)
            await uow.refresh_tokens.revoke_all_of(user_id, now)
            await uow.api_tokens.revoke_all(user_id)
            await uow.commit()
