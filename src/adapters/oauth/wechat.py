"""WeChat website login (open platform "qrconnect", OAuth 2.0 authorization code).

WeChat reports errors as ``{"errcode": ..., "errmsg": ...}`` in a 200 response, often with
a text/plain content type, so answers are judged by their body, never by the status
line or the header."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx

from application.errors import OAuthProviderError
from application.ports import ExternalAccount
from domain.errors import InvalidInput

PROVIDER = "wechat"
# Codes that mean the authorization code itself is bad: the user should start again.
BAD_CODE_ERRORS = {40029: "invalid code", 40163: "code already used", 41008: "missing code"}


class WeChatLogin:
    name = "WeChat"

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        redirect_uri: str,
        open_base_url: str,
        api_base_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        self._app_id = app_id
        self._secret = app_secret
        self._redirect_uri = redirect_uri
        self._open = open_base_url.rstrip("/")
        self._api = api_base_url.rstrip("/")
        self._http = http

    @property
    def configured(self) -> bool:
        return bool(self._app_id and self._secret and self._redirect_uri)

    def authorization_url(self, state: str) -> str:
        query = urlencode(
            {
                "appid": self._app_id,
                "redirect_uri": self._redirect_uri,
                "response_type": "code",
                "scope": "snsapi_login",
                "state": state,
            }
        )
        return f"{self._open}/connect/qrconnect?{query}#wechat_redirect"

    async def identify(self, code: str) -> ExternalAccount:
        token = await self._call(
            "/sns/oauth2/access_token",
            {
                "appid": self._app_id,
                "secret": self._secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        access_token, openid = token.get("access_token"), token.get("openid")
        if not isinstance(access_token, str) or not isinstance(openid, str):
            raise OAuthProviderError("WeChat returned no access token.")
        profile = await self._call(
            "/sns/userinfo", {"access_token": access_token, "openid": openid}
        )
        unionid = profile.get("unionid") or token.get("unionid")
        subject = unionid if isinstance(unionid, str) and unionid else openid
        nickname = profile.get("nickname")
        return ExternalAccount(
            provider=PROVIDER,
            subject=subject,
            display_name=nickname if isinstance(nickname, str) else "",
        )

    async def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.get(f"{self._api}{path}", params=params)
        except httpx.HTTPError:
            raise OAuthProviderError("WeChat could not be reached.") from None
        try:
            body = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise OAuthProviderError(
                f"WeChat answered HTTP {response.status_code} without JSON."
            ) from None
        if not isinstance(body, dict):
            raise OAuthProviderError("WeChat answered with an unexpected body.")
        errcode = body.get("errcode")
        if isinstance(errcode, int) and errcode != 0:
            if errcode in BAD_CODE_ERRORS:
                raise InvalidInput(
                    {"code": [f"WeChat refused the code ({errcode}: {BAD_CODE_ERRORS[errcode]})."]}
                )
            # errmsg may echo request details; only the code goes out.
            raise OAuthProviderError(f"WeChat refused the login (errcode {errcode}).")
        if response.status_code != 200:
            raise OAuthProviderError(f"WeChat answered HTTP {response.status_code}.")
        return body
