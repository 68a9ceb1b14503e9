"""``/api/v1/register/``, ``/api/v1/login/``, ``/api/v1/token/refresh/``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from application.accounts import (
    Credentials,
    LogIn,
    RefreshAccessToken,
    RegisterUser,
    RegisterUserRequest,
)
from application.throttling import Throttle
from entrypoints.http.api_v1.schemas import (
    LoginIn,
    RefreshIn,
    RegisterIn,
    SignedInOut,
    TokenPairOut,
    signed_in_out,
)
from entrypoints.http.auth import client_address
from entrypoints.http.bodies import CheckedBody


class AccountsController(Controller):
    path = "/"
    tags = ["accounts (/api/v1)"]

    @post(
        "/register/",
        operation_id="v1_register",
        status_code=201,
        dto=CheckedBody[RegisterIn],
        return_dto=None,
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterIn],
        register: NamedDependency[RegisterUser],
        throttle: NamedDependency[Throttle],
    ) -> SignedInOut:
        """Create an account and receive tokens. Every failing field is reported."""
        await throttle.credentials(data.username, client_address(request))
        signed_in = await register(
            RegisterUserRequest(username=data.username, email=data.email, password=data.password)
        )
        return signed_in_out(signed_in)

    @post(
        "/login/",
        operation_id="v1_login",
        status_code=200,
        dto=CheckedBody[LoginIn],
        return_dto=None,
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginIn],
        login: NamedDependency[LogIn],
        throttle: NamedDependency[Throttle],
    ) -> SignedInOut:
        """Exchange username and password for an access token (15 min) and a refresh token."""
        await throttle.credentials(data.username, client_address(request))
        return signed_in_out(
            await login(Credentials(username=data.username, password=data.password))
        )

    @post(
        "/token/refresh/",
        operation_id="v1_token_refresh",
        status_code=200,
        dto=CheckedBody[RefreshIn],
        return_dto=None,
    )
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefreshIn],
        refresh_session: NamedDependency[RefreshAccessToken],
        throttle: NamedDependency[Throttle],
    ) -> TokenPairOut:
        """A new access token and a new refresh token; each refresh token works once."""
        await throttle.credentials("", client_address(request))
        refreshed = await refresh_session(data.refresh)
        return TokenPairOut(access=refreshed.access, refresh=refreshed.refresh)
