"""Headers every response carries, and CORS (off unless origins are configured)."""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# Pages (the web app, the API docs) load only the app's own files: no inline script or
# style, nothing from another origin. ``data:``/``blob:`` images are the previews of
# attached pictures; ``form-action 'self'`` because the pages' forms post to no one else.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    if "allow" in headers:
        allow: dict[str, str] = scope["app"].state.allowed_methods
        template = scope.get("path_template")
        if template in allow:
            headers["Allow"] = allow[template]
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    if "content-security-policy" not in headers:
        is_html = headers.get("content-type", "").startswith("text/html")
        headers["Content-Security-Policy"] = PAGE_CSP if is_html else _API_CSP


def cors_config(origins: list[str]) -> CORSConfig | None:
    """Cross-origin browsers are refused unless their origin is listed."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-CSRFToken",
            "Idempotency-Key",
            "Accept",
        ],
        expose_headers=[
            "X-Total-Count",
            "Link",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Idempotent-Replayed",
        ],
        allow_credentials=True,
        max_age=600,
    )
