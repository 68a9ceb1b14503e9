"""Opaque API tokens: 160 random bits, stored only as a SHA-256 digest.

A fast digest is right here (unlike passwords): the token is random and long, so there
is nothing to brute-force, and lookups happen on every request."""

from __future__ import annotations

import hashlib
import secrets


class Sha256ApiTokenCodec:
    def new_token(self) -> str:
        return secrets.token_hex(20)

    def digest(self, token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()
