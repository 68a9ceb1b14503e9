"""HS256 JWT access and refresh tokens with typed, time-bounded claims."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from application.ports import AccessClaims, Clock, IssuedTokens, RefreshClaims
from domain.errors import AuthenticationFailed

ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=5)
# Verified access tokens remembered, so a client's next request with the same token skips
# PyJWT's parse and HMAC (~0.5 ms of a chat request here). A token's signature and
# claims cannot change; expiry is checked again on every use, and revocation is not a
# property of the token (the user row is read on every request).
VERIFIED_TOKENS_KEPT = 4096
ACCESS = "access"
REFRESH = "refresh"


class JwtTokenIssuer:
    def __init__(
        self, secret_key: str, *, access_ttl: timedelta, refresh_ttl: timedelta, clock: Clock
    ) -> None:
        self._key = secret_key
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._clock = clock
        self._verified_access: dict[str, tuple[AccessClaims, float]] = {}

    @property
    def verified_tokens_remembered(self) -> int:
        """How many verified access tokens are kept (at most VERIFIED_TOKENS_KEPT)."""
        return len(self._verified_access)

    def issue(self, user_id: int, family_id: str) -> IssuedTokens:
        now = self._clock.now()
        jti = secrets.token_hex(16)
        access = self._encode(
            {
                "sub": str(user_id),
                "type": ACCESS,
                "iat": now.timestamp(),
                "exp": now + self._access_ttl,
                "jti": secrets.token_hex(16),
                "fam": family_id,
            }
        )
        refresh_expires = now + self._refresh_ttl
        refresh = self._encode(
            {
                "sub": str(user_id),
                "type": REFRESH,
                "iat": now.timestamp(),
                "exp": refresh_expires,
                "jti": jti,
                "fam": family_id,
            }
        )
        return IssuedTokens(
            access=access, refresh=refresh, refresh_jti=jti, refresh_expires_at=refresh_expires
        )

    def new_family_id(self) -> str:
        return secrets.token_hex(16)

    def access_claims(self, token: str) -> AccessClaims:
        remembered = self._verified_access.get(token)
        if remembered is not None:
            access, expires_at = remembered
            if time.time() < expires_at + LEEWAY.total_seconds():  # PyJWT's clock, leeway
                return access
            del self._verified_access[token]
        claims = self._decode(token, ACCESS, "Given token not valid for any token type")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float):
            raise AuthenticationFailed("Given token not valid for any token type")
        family = claims.get("fam")
        access = AccessClaims(
            user_id=_user_id(claims),
            issued_at=datetime.fromtimestamp(issued, UTC),
            family_id=family if isinstance(family, str) else None,
        )
        if isinstance(expires, int | float):
            if len(self._verified_access) >= VERIFIED_TOKENS_KEPT:
                del self._verified_access[next(iter(self._verified_access))]
            self._verified_access[token] = (access, float(expires))
        return access

    def refresh_claims(self, token: str) -> RefreshClaims:
        claims = self._decode(token, REFRESH, "Token is invalid or expired.")
        jti, family = claims.get("jti"), claims.get("fam")
        if not isinstance(jti, str) or not isinstance(family, str):
            raise AuthenticationFailed("Token is invalid or expired.")
        return RefreshClaims(user_id=_user_id(claims), jti=jti, family_id=family)

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def _decode(self, token: str, expected_type: str, failure: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],  # a fixed list: "alg": "none" and others are refused
                options={"require": ["exp", "iat", "sub", "type"]},
                leeway=LEEWAY,
            )
        except jwt.PyJWTError:
            raise AuthenticationFailed(failure) from None
        if claims.get("type") != expected_type:
            raise AuthenticationFailed(failure)
        return claims


def _user_id(claims: dict[str, Any]) -> int:
    try:
        return int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        raise AuthenticationFailed("Token contained no recognizable user identification") from None
