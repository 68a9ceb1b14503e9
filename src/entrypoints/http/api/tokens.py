"""``/api/auth/token/``: long-lived API tokens (DRF authtoken convention)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from application.accounts import Credentials, IssueApiToken, RevokeApiToken, RevokeApiTokenRequest
from application.throttling import Throttle
from domain.users import User
from entrypoints.http.api.schemas import TokenCredentialsIn, TokenOut
from entrypoints.http.auth import client_address, presented_api_token
from entrypoints.http.bodies import CheckedBody


class ApiTokenController(Controller):
    path = "/auth/token"
    tags = ["auth (/api)"]

    @post(
        "/",
        operation_id="api_obtain_token",
        status_code=200,
        dto=CheckedBody[TokenCredentialsIn],
        return_dto=None,
    )
    async def obtain_token(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenCredentialsIn],
        issue_api_token: NamedDependency[IssueApiToken],
        throttle: NamedDependency[Throttle],
    ) -> TokenOut:
        """Exchange username and password for an API token, sent as
        ``Authorization: Token <token>``. The token is shown once; only a digest is kept."""
        await throttle.credentials(data.username, client_address(request))
        token = await issue_api_token(Credentials(username=data.username, password=data.password))
        return TokenOut(token=token)

    @delete("/", operation_id="api_revoke_token", status_code=204)
    async def revoke_token(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        revoke_api_token: NamedDependency[RevokeApiToken],
    ) -> None:
        """Revoke the API token this request carries; with a JWT, revoke all your API tokens."""
        await revoke_api_token(
            RevokeApiTokenRequest(user_id=user.id, presented_token=presented_api_token(request))
        )
