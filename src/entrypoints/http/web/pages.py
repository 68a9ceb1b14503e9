"""The page routes: ``/`` (sign in, register, chat) and ``/admin/`` (staff only).

A page is a shell: its language, who is signed in and the API's base paths, as data
attributes the scripts read. Anonymous visitors of ``/admin/`` are sent to sign in first;
signed-in non-staff get the 403 page, as the admin API answers them 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_403_FORBIDDEN

from domain.users import User
from entrypoints.http.auth import UNLIMITED

WEB_ROOT = Path(__file__).parent
TEMPLATES = WEB_ROOT / "templates"
STATIC = WEB_ROOT / "static"

LANGUAGES = ("en", "zh")
_FORBIDDEN = {
    "en": ("Not allowed", "This page is for staff accounts."),
    "zh": ("无权访问", "此页面仅供管理员账户使用。"),
}


def page_language(request: Request[Any, Any, Any]) -> str:
    """The first of the browser's languages that the pages speak (English by default)."""
    for entry in request.headers.get("accept-language", "").split(","):
        tag = entry.split(";")[0].strip().lower()
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return "en"


def _shell(
    request: Request[Any, Any, Any], name: str, user: User | None, **context: Any
) -> Template:
    return Template(
        template_name=name,
        context={
            "lang": page_language(request),
            "user": user,
            "wechat": bool(request.app.state.wechat_login),
            **context,
        },
    )


class PagesController(Controller):
    include_in_schema = False
    opt = {UNLIMITED: True}

    @get("/")
    async def chat(
        self, request: Request[Any, Any, Any], optional_user: NamedDependency[User | None]
    ) -> Template:
        return _shell(request, "chat.html", optional_user)

    @get("/admin/")
    async def admin(
        self, request: Request[Any, Any, Any], optional_user: NamedDependency[User | None]
    ) -> Template | Redirect:
        if optional_user is None:
            return Redirect("/?next=/admin/")
        if not optional_user.is_staff:
            title, text = _FORBIDDEN[page_language(request)]
            template = _shell(request, "forbidden.html", optional_user, title=title, text=text)
            template.status_code = HTTP_403_FORBIDDEN
            return template
        return _shell(request, "admin.html", optional_user)
