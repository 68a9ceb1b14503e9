"""The JWT adapter remembers verified access tokens without weakening any check."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo

import jwt
import pytest

from adapters.auth import jwt_tokens
from adapters.auth.jwt_tokens import JwtTokenIssuer
from domain.errors import AuthenticationFailed

KEY = "k" * 48


class _Now:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _issuer(minutes: float = 5) -> JwtTokenIssuer:
    return JwtTokenIssuer(
        KEY, access_ttl=timedelta(minutes=minutes), refresh_ttl=timedelta(days=1), clock=_Now()
    )


def test_a_token_used_again_gives_the_same_claims() -> None:
    issuer = _issuer()
    token = issuer.issue(7, issuer.new_family_id()).access
    first, second = issuer.access_claims(token), issuer.access_claims(token)
    assert first == second
    assert first.user_id == 7


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = _issuer(minutes=1)
    token = issuer.issue(7, issuer.new_family_id()).access
    issuer.access_claims(token)  # verified and remembered
    later = time.time() + 120

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(later, tz)

    # Two minutes pass, for the adapter and for PyJWT alike.
    monkeypatch.setattr(time, "time", lambda: later)  # the adapter reads time.time()
    monkeypatch.setattr(jwt.api_jwt, "datetime", Later)
    with pytest.raises(AuthenticationFailed):
        issuer.access_claims(token)


def test_a_tampered_token_is_refused_even_after_the_genuine_one_was_seen() -> None:
    issuer = _issuer()
    token = issuer.issue(7, issuer.new_family_id()).access
    issuer.access_claims(token)
    claims = jwt.decode(token, KEY, algorithms=["HS256"])
    forged = jwt.encode({**claims, "sub": "8"}, "another-key-" * 4, algorithm="HS256")
    with pytest.raises(AuthenticationFailed):
        issuer.access_claims(forged)


def test_refresh_tokens_are_not_access_tokens_even_when_remembered() -> None:
    issuer = _issuer()
    tokens = issuer.issue(7, issuer.new_family_id())
    issuer.access_claims(tokens.access)
    with pytest.raises(AuthenticationFailed):
        issuer.access_claims(tokens.refresh)


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_tokens, "VERIFIED_TOKENS_KEPT", 3)
    issuer = _issuer()
    tokens = [issuer.issue(i, issuer.new_family_id()).access for i in range(1, 6)]
    for token in tokens:
        issuer.access_claims(token)
    assert [issuer.access_claims(t).user_id for t in tokens] == [1, 2, 3, 4, 5]
    assert issuer.verified_tokens_remembered <= 3
