"""WeChat website login: ``/api/v1/auth/wechat/url/`` and ``.../callback/``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from application.oauth import STATE_TTL_SECONDS, BeginOAuthLogin, CompleteOAuthLogin, OAuthCallback
from application.throttling import Throttle
from domain.users import User
from entrypoints.http.api_v1.schemas import SignedInOut, WeChatUrlOut, signed_in_out
from entrypoints.http.auth import client_address

BINDING_COOKIE = "parley_wechat_binding"
COOKIE_PATH = "/api/v1/auth/wechat"


class WeChatController(Controller):
    path = "/auth/wechat"
    tags = ["accounts (/api/v1)"]

    @get("/url/", operation_id="v1_wechat_url")
    async def authorization_url(
        self,
        request: Request[Any, Any, Any],
        optional_user: NamedDependency[User | None],
        begin_wechat_login: NamedDependency[BeginOAuthLogin],
    ) -> Response[WeChatUrlOut]:
        """The WeChat QR-login URL. Its `state` is single use, valid 10 minutes and bound
        to this client by an http-only cookie. Called while logged in (Bearer/Token/
        session), the login links WeChat to your account instead of creating one."""
        link = optional_user.id if optional_user is not None else None
        started = await begin_wechat_login(link)
        secure = request.url.scheme == "https"
        return Response(
            WeChatUrlOut(url=started.url, state=started.state),
            cookies=[
                Cookie(
                    key=BINDING_COOKIE,
                    value=started.binding,
                    path=COOKIE_PATH,
                    max_age=STATE_TTL_SECONDS,
                    httponly=True,
                    samesite="lax",
                    secure=secure,
                )
            ],
        )

    @get("/callback/", operation_id="v1_wechat_callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        complete_wechat_login: NamedDependency[CompleteOAuthLogin],
        throttle: NamedDependency[Throttle],
        code: Annotated[str, QueryParameter(description="WeChat's authorization code.")],
        oauth_state: Annotated[
            str, QueryParameter(name="state", description="The state from /url/.")
        ],
    ) -> Response[SignedInOut]:
        """Exchange WeChat's code for Parley tokens (the login body). The user is found
        by unionid (else openid) or created."""
        await throttle.credentials("", client_address(request))
        signed_in = await complete_wechat_login(
            OAuthCallback(code=code, state=oauth_state, binding=request.cookies.get(BINDING_COOKIE))
        )
        return Response(
            signed_in_out(signed_in),
            cookies=[Cookie(key=BINDING_COOKIE, value="", path=COOKIE_PATH, max_age=0)],
        )
