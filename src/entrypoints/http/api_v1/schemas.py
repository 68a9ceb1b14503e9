"""Request and response bodies of the ``/api/v1/...`` dialect (seed 000)."""

from __future__ import annotations

import msgspec

from application.accounts import SignedIn


class RegisterIn(msgspec.Struct):
    username: str
    email: str
    password: str


class LoginIn(msgspec.Struct):
    username: str
    password: str


class RefreshIn(msgspec.Struct):
    refresh: str


class SignedInOut(msgspec.Struct):
    refresh: str
    access: str
    username: str
    email: str


class TokenPairOut(msgspec.Struct):
    access: str
    refresh: str


class HealthOut(msgspec.Struct):
    status: str
    message: str
    database: str


def signed_in_out(signed_in: SignedIn) -> SignedInOut:
    return SignedInOut(
        refresh=signed_in.refresh,
        access=signed_in.access,
        username=signed_in.user.username,
        email=signed_in.user.email,
    )
