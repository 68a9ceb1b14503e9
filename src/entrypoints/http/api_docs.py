"""The API docs page (``/schema``, ``/schema/swagger``): Swagger UI from this server's own
files, under the pages' Content-Security-Policy (security_headers.py).

Litestar's own Swagger and Scalar plugins load their scripts from a CDN and start them with
an inline script, so on a server without internet the page was blank, and it needed a CSP
with ``'unsafe-inline'`` and the CDN. Here the page is a shell of local files: Swagger UI
from the ``swagger-ui-bundle-v2`` package and a start-up script of Parley's
(``web/static/api-docs.js``) that reads its settings from data attributes.

``swagger-ui-bundle-v2`` 5.31.0 (Apache-2.0, like Swagger UI) is a fork of
``swagger-ui-bundle``, whose last release (1.1.0) ships Swagger UI 4.15.5: that version
reads no OpenAPI 3.1, which is what Litestar writes, and shows "Unable to render this
definition" instead of the API. The fork's files are byte for byte those of the npm package
swagger-ui-dist 5.31.0 (compared when it was chosen). Both install the same
``swagger_ui_bundle`` module, so only one of them can be a dependency.

Scalar is gone: no Python package ships its standalone bundle on its own (the one that has
it, flask-openapi3-scalar, brings Flask and flask-openapi3 along), and one viewer is
enough."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.file_system import BaseLocalFileSystem
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed

from entrypoints.http.auth import UNLIMITED
from entrypoints.http.csrf import CSRF_COOKIE, CSRF_HEADER

if TYPE_CHECKING:
    from litestar.connection import Request
    from litestar.types import PathType
    from litestar.types.file_types import FileInfo

__all__ = ["ASSETS_PATH", "SWAGGER_UI", "assets_router", "render_plugins"]

ASSETS_PATH = "/schema/assets"
SWAGGER_UI = Path(str(swagger_ui_path))
# What the page loads, and the source maps a developer's browser asks for. The rest of the
# package is its demo (index.html and swagger-initializer.js show the Petstore API) and an
# OAuth2 redirect page with an inline script: not served from Parley's origin.
_SERVED = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui.css.map",
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
    }
)
_START_SCRIPT = "/static/api-docs.js"


class _ViewerFiles(BaseLocalFileSystem):
    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        if Path(path).name not in _SERVED:
            raise FileNotFoundError(path)
        return await super().info(path, **kwargs)


class LocalSwaggerRenderPlugin(OpenAPIRenderPlugin):
    """Swagger UI as a page of local files with no inline script or style. Litestar's own
    ``SwaggerRenderPlugin`` is not the base: its page and its OAuth2 redirect page are
    inline scripts, and Parley's security schemes use no OAuth2."""

    def __init__(self, *, path: str | list[str] | None = None) -> None:
        super().__init__(path=path or ["/swagger"])

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(f"{openapi_schema['info']['title']} API")
        spec_url = escape(self.get_openapi_json_route(request))
        page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<script src="{ASSETS_PATH}/swagger-ui-bundle.js" defer></script>
<script src="{_START_SCRIPT}" defer></script>
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec_url}" data-csrf-cookie="{CSRF_COOKIE}"
     data-csrf-header="{CSRF_HEADER}"></div>
<noscript><p>The API documentation needs JavaScript; the document itself is at
<a href="{spec_url}">{spec_url}</a>.</p></noscript>
</body>
</html>
"""
        return page.encode()


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """The docs viewers for ``OpenAPIConfig``: the first is also the page at ``/schema``."""
    return [LocalSwaggerRenderPlugin()]


def assets_router() -> Router:
    """Swagger UI's files at ``/schema/assets/``. Anonymous visitors load them with every
    view of the page, so they are not counted against the anonymous rate limit; they are
    revalidated (ETag/Last-Modified) so that an upgraded package is seen at once."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[SWAGGER_UI],
        file_system=_ViewerFiles(),
        name="api_docs_assets",
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
        opt={UNLIMITED: True},
    )
