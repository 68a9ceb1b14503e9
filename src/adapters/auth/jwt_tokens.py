"""HS256 JWT access and refresh tokens with typed, time-bounded claims."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from application.ports import AccessClaims, Clock, IssuedTokens, RefreshClaims
from domain.errors import AuthenticationFailed

ALGORITHM = "HS256"
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
        claims = self._decode(token, ACCESS, "Given token not valid for any token type")
        issued = claims.get("iat")
        if not isinstance(issued, int | float):
            raise AuthenticationFailed("Given token not valid for any token type")
        return AccessClaims(user_id=_user_id(claims), issued_at=datetime.fromtimestamp(issued, UTC))

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
                leeway=timedelta(seconds=5),
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
