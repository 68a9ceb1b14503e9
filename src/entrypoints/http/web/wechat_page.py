"""WeChat's QR login for the web app: ``/auth/wechat/start/`` sends the browser to WeChat,
``/auth/wechat/`` (the ``WECHAT_REDIRECT_URI`` of a server whose people sign in through
the pages) is where WeChat sends it back with ``code`` and ``state``.

The use cases are the API's (``BeginOAuthLogin``, ``CompleteOAuthLogin``), so the state,
its binding to this browser, linking to a signed-in account and the rules about who is
found or created are the same; what differs is the edge. The browser gets a session
(as ``POST /api/auth/session/`` gives one) instead of JSON tokens, and a failure is a page
in the reader's language with a way back, never a JSON body. The binding cookie is the
API's, on this path: the API's own cookie (path ``/api/v1/auth/wechat``) never reaches
here, and this one never reaches the API's callback."""

# Chinese is written with its own full-width commas and colons, which RUF001 takes for
# look-alikes of ASCII.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from application.oauth import STATE_TTL_SECONDS, BeginOAuthLogin, CompleteOAuthLogin, OAuthCallback
from application.throttling import Throttle
from domain.errors import DomainError, InvalidInput
from domain.users import User
from entrypoints.http.api.sessions import start_browser_session
from entrypoints.http.api_v1.wechat import BINDING_COOKIE
from entrypoints.http.auth import UNLIMITED, client_address
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.sessions import live_session_id
from entrypoints.http.web.pages import page_language

COOKIE_PATH = "/auth/wechat"
# Where to land once signed in (``?next=`` of the sign-in page), kept while WeChat asks.
NEXT_COOKIE = "parley_wechat_next"

_TEXTS = {
    "en": {
        "title": "WeChat sign-in failed",
        "back": "Back to sign in",
        "back_signed_in": "Back to Parley",
        "code_label": "Error code",
    },
    "zh": {
        "title": "微信登录失败",
        "back": "返回登录",
        "back_signed_in": "返回 Parley",
        "code_label": "错误代码",
    },
}
# Why, by the error's code (an InvalidInput by its field: what WeChat said of the code,
# or whose the WeChat account already is).
_REASONS = {
    "invalid_state": (
        "This sign-in has expired or was already used. Start again from the sign-in page.",
        "此次登录已过期或已被使用，请从登录页重新开始。",
    ),
    "code": (
        "WeChat did not confirm the sign-in: it was cancelled, or WeChat refused the code. "
        "Try again.",
        "微信没有确认此次登录：登录已取消，或微信拒绝了授权码。请重试。",
    ),
    "wechat": (
        "This WeChat account is already linked to another user.",
        "此微信账号已绑定其他用户。",
    ),
    "oauth_provider_error": (
        "WeChat could not complete the sign-in. Try again in a moment.",
        "微信未能完成登录，请稍后重试。",
    ),
    "oauth_not_configured": (
        "WeChat sign-in is not set up on this server.",
        "此服务器尚未配置微信登录。",
    ),
    "authentication_failed": (
        "This account cannot sign in: it is deactivated, or its session has ended.",
        "此账户无法登录：账户已停用，或会话已结束。",
    ),
    "throttled": (
        "Too many sign-in attempts from here. Wait a minute, then try again.",
        "登录尝试过于频繁，请稍等一分钟再试。",
    ),
    "error": (
        "Something went wrong and the sign-in was not completed. Try again.",
        "出现问题，登录未完成。请重试。",
    ),
}
_REASON_OF_CODE = {"not_authenticated": "authentication_failed"}


def same_site_path(value: str | None) -> str:
    """``value`` if it is a path of this site, else ``/``: a link must not be able to send
    people to another site after they sign in (``//host`` and ``/\\host`` are other
    sites to a browser)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    # A backslash is a slash to a browser; ASCII only, as it goes out in a Location header.
    if "\\" in value or not value.isascii() or not value.isprintable() or " " in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _forget_login(request: Request[Any, Any, Any]) -> list[Cookie]:
    return [_cookie(request, name, "", 0) for name in (BINDING_COOKIE, NEXT_COOKIE)]


def _landing(request: Request[Any, Any, Any]) -> str:
    return same_site_path(unquote(request.cookies.get(NEXT_COOKIE, "")))


def _reason_key(error: Exception) -> str:
    if isinstance(error, InvalidInput):
        return next((field for field in ("wechat", "code") if field in error.field_errors), "code")
    if isinstance(error, DomainError):
        code = _REASON_OF_CODE.get(error.code, error.code)
        return code if code in _REASONS else "error"
    return "error"


def _api_answer(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """What the API would answer: its status, its Retry-After, and its logging of what
    went wrong on the server."""
    for cls in type(error).__mro__:
        if cls in EXCEPTION_HANDLERS:
            return EXCEPTION_HANDLERS[cls](request, error)
    raise error  # unreachable: Exception is in the table


def failure_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """A login that did not happen, as a page: why, in the reader's language, and a way
    back to sign in. No session was started (that is the last step of a login)."""
    answer = _api_answer(request, error)
    lang = page_language(request)
    texts = _TEXTS[lang]
    key = _reason_key(error)
    english, chinese = _REASONS[key]
    landing = _landing(request)
    back = "/" if landing == "/" else f"/?next={quote(landing, safe='/')}"
    signed_in = live_session_id(request) is not None
    retry_after = answer.headers.get("Retry-After")
    status = answer.status_code or 500
    return Template(
        template_name="wechat.html",
        context={
            "lang": lang,
            "user": None,
            "wechat": True,
            "title": texts["title"],
            "reason": english if lang == "en" else chinese,
            "code_label": texts["code_label"],
            "code": error.code if isinstance(error, DomainError) else key,
            "back": back,
            "back_text": texts["back_signed_in" if signed_in else "back"],
        },
        status_code=status,
        headers={"Retry-After": retry_after} if retry_after else None,
        cookies=_forget_login(request),
    )


class WeChatPageController(Controller):
    path = COOKIE_PATH
    include_in_schema = False
    # Every error the app maps (domain, HTTP, database, unexpected) becomes the page here.
    exception_handlers: ExceptionHandlersMap = dict.fromkeys(EXCEPTION_HANDLERS, failure_page)

    @get("/start/")
    async def start(
        self,
        request: Request[Any, Any, Any],
        optional_user: NamedDependency[User | None],
        begin_wechat_login: NamedDependency[BeginOAuthLogin],
        next_path: Annotated[str, QueryParameter(name="next")] = "/",
    ) -> Redirect:
        """To WeChat's QR page. Like the API's ``/url/`` (and counted like it, since it
        stores a state): signed in, the login links WeChat to this account."""
        link = optional_user.id if optional_user is not None else None
        started = await begin_wechat_login(link)
        landing = quote(same_site_path(next_path), safe="/")
        return Redirect(
            started.url,
            status_code=303,
            cookies=[
                _cookie(request, BINDING_COOKIE, started.binding, STATE_TTL_SECONDS),
                _cookie(request, NEXT_COOKIE, landing, STATE_TTL_SECONDS),
            ],
        )

    @get("/", opt={UNLIMITED: True})
    async def finish(
        self,
        request: Request[Any, Any, Any],
        complete_wechat_login: NamedDependency[CompleteOAuthLogin],
        throttle: NamedDependency[Throttle],
        code: str = "",
        oauth_state: Annotated[str, QueryParameter(name="state")] = "",
    ) -> Redirect:
        """WeChat sends the browser back here. The login is the API callback's (and
        limited like it); it ends in a browser session and the page that was asked for.
        Without ``code`` (the person declined in WeChat) it fails like the API's."""
        await throttle.credentials("", client_address(request))
        signed_in = await complete_wechat_login(
            OAuthCallback(code=code, state=oauth_state, binding=request.cookies.get(BINDING_COOKIE))
        )
        _, csrf_cookie = start_browser_session(request, signed_in.user)
        return Redirect(
            _landing(request), status_code=303, cookies=[csrf_cookie, *_forget_login(request)]
        )
