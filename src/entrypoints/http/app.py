"""The Litestar application: both API dialects over one core."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from dependency_injector import providers
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig

from application.chat.stream import INTERRUPTED
from entrypoints import logs
from entrypoints.container import Container
from entrypoints.http import api_docs
from entrypoints.http.api.admin import (
    AdminConversationsController,
    AdminMonitoringController,
    AdminUsersController,
)
from entrypoints.http.api.admin_providers import AdminProvidersController
from entrypoints.http.api.branches import BranchesController
from entrypoints.http.api.budgets import AdminLimitsController, OwnBudgetController
from entrypoints.http.api.chat_settings import ChatSettingsController
from entrypoints.http.api.conversations import ConversationsController, RepliesController
from entrypoints.http.api.sessions import SessionController
from entrypoints.http.api.tokens import ApiTokenController
from entrypoints.http.api.transfer import TransferController
from entrypoints.http.api.usage import UsageController
from entrypoints.http.api_v1.accounts import AccountsController
from entrypoints.http.api_v1.branches import BranchesV1Controller
from entrypoints.http.api_v1.chat import ChatController, RepliesV1Controller
from entrypoints.http.api_v1.conversations import ConversationsV1Controller, MessagesV1Controller
from entrypoints.http.api_v1.health import health, ready
from entrypoints.http.api_v1.transfer import TransferV1Controller
from entrypoints.http.api_v1.wechat import WeChatController
from entrypoints.http.auth import (
    UNLIMITED,
    authenticated_user,
    bearer_user,
    limit_anonymous_requests,
    optional_user,
    turn_caller,
)
from entrypoints.http.csrf import CSRF_COOKIE, CSRF_HEADER, SessionCSRFMiddleware
from entrypoints.http.dependencies import resolve_dependencies_in_order
from entrypoints.http.dialects import DRF_STYLE, OPENAI, V1
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.interrupted_turns import mark_interrupted_turns
from entrypoints.http.observability import metrics_routes, wrap_with_request_context
from entrypoints.http.openai_v1.chat import OpenAIController
from entrypoints.http.openapi import allowed_methods, list_models, refuse_nul_in_message_texts
from entrypoints.http.openapi import document as document_errors
from entrypoints.http.pagination import page_request
from entrypoints.http.security_headers import add_security_headers, cors_config
from entrypoints.http.sessions import SESSION_COOKIE, LazySessionConfig
from entrypoints.http.web.pages import STATIC, TEMPLATES, PagesController
from entrypoints.http.web.wechat_page import WeChatPageController
from entrypoints.settings import Settings, load_settings, with_secret_key
from entrypoints.tracing import Tracing, tracing_from_environment


def _from_container(provider: Callable[[], Any]) -> Provide:
    def build() -> Any:
        return provider()

    return Provide(build, sync_to_thread=False)


def use_cases(container: Container) -> dict[str, Provide]:
    """Every use case the container builds, by its provider's name: what handlers ask for
    by parameter name. Adding a use case is one provider in container.py."""
    return {
        name: _from_container(provider)
        for name, provider in container.providers.items()
        if isinstance(provider, providers.Factory)
        and getattr(provider.provides, "__module__", "").startswith("application.")
    }


resolve_dependencies_in_order()


def create_app(container: Container, tracing: Tracing | None = None) -> Litestar:
    dependencies = use_cases(container)
    dependencies["catalog"] = _from_container(container.catalog)
    dependencies["throttle"] = _from_container(container.throttle)
    dependencies["idempotent_requests"] = _from_container(container.idempotent_requests)
    dependencies["budget_rules"] = _from_container(container.budget_rules)
    dependencies["user"] = Provide(authenticated_user)
    dependencies["optional_user"] = Provide(optional_user)
    dependencies["caller"] = Provide(turn_caller)
    dependencies["page"] = Provide(page_request, sync_to_thread=False)

    api = Router(
        path="/api",
        opt={"dialect": DRF_STYLE},
        route_handlers=[
            ConversationsController,
            TransferController,
            RepliesController,
            BranchesController,
            ChatSettingsController,
            ApiTokenController,
            SessionController,
            UsageController,
            OwnBudgetController,
            AdminLimitsController,
            AdminConversationsController,
            AdminUsersController,
            AdminMonitoringController,
            AdminProvidersController,
        ],
    )
    api_v1 = Router(
        path="/api/v1",
        opt={"dialect": V1},
        route_handlers=[
            AccountsController,
            ChatController,
            ConversationsV1Controller,
            TransferV1Controller,
            MessagesV1Controller,
            RepliesV1Controller,
            BranchesV1Controller,
            WeChatController,
            health,
            ready,
        ],
    )
    # OpenAI's API shape: the SDKs' ``api_key`` is sent as a Bearer key.
    openai_v1 = Router(
        path="/v1",
        opt={"dialect": OPENAI},
        route_handlers=[OpenAIController],
        dependencies={"user": Provide(bearer_user)},
    )

    async def release_resources() -> None:
        # Replies still being written are stored as they stand (``interrupted``).
        await container.generations().stop_all(INTERRUPTED)
        await container.engine().dispose()
        await container.llm().aclose()
        redis = container.redis()
        if redis is not None:
            await redis.aclose()

    config = container.config
    secret = config.secret_key()
    session = LazySessionConfig(
        key=SESSION_COOKIE,
        store="sessions",
        max_age=config.session_max_age(),
        httponly=True,
        samesite="lax",
        secure=config.cookie_secure(),
    )
    csrf = CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_secure=config.cookie_secure(),
    )
    redis = container.redis()
    sessions_store = (
        MemoryStore() if redis is None else RedisStore(redis, namespace="parley-sessions")
    )

    # The pages' scripts and styles are files of the project; revalidated on every load
    # (ETag/Last-Modified) so that an upgrade is seen at once without versioned names.
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
        opt={UNLIMITED: True},
    )

    route_handlers: list[Any] = [
        api,
        api_v1,
        openai_v1,
        PagesController,
        WeChatPageController,
        static,
        api_docs.assets_router(),
    ]
    middleware = [session.middleware, DefineMiddleware(SessionCSRFMiddleware, config=csrf)]
    if config.metrics_enabled():
        metrics_controller, http_metrics = metrics_routes()
        route_handlers.append(metrics_controller)
        middleware.insert(0, http_metrics)
        from adapters.telemetry.database import measure_database  # see metrics.py

        measure_database(container.engine())

    app = Litestar(
        route_handlers=route_handlers,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        on_shutdown=[release_resources],
        middleware=middleware,
        stores={"sessions": sessions_store},
        plugins=[] if tracing is None else [tracing],
        state=State(
            {
                "csrf_config": csrf,
                "throttle": container.throttle(),
                "wechat_login": bool(config.wechat_app_id()),
                "metrics": config.metrics_enabled(),
                "metrics_token": config.metrics_token(),
            }
        ),
        # Logging is configured once, by configure_logging (text or JSON lines, each with its
        # request id); Litestar's default configuration would replace the root handler.
        logging_config=None,
        before_request=limit_anonymous_requests,
        before_send=[add_security_headers],
        request_max_body_size=config.max_body_bytes(),
        cors_config=cors_config(list(config.cors_origins())),
        openapi_config=OpenAPIConfig(
            title="Parley",
            version="0.1.0",
            description=(
                "Self-hosted AI chat backend. Two dialects over one core: `/api/...` "
                "(DRF style) and `/api/v1/...`; and OpenAI's Chat Completions and Models "
                "under `/v1/...`, for any OpenAI client."
            ),
            path="/schema",
            render_plugins=api_docs.render_plugins(),
            components=Components(
                security_schemes={
                    "BearerJWT": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="Access token from /api/v1/login/ or /api/v1/register/.",
                    ),
                    "Session": SecurityScheme(
                        type="apiKey",
                        name=SESSION_COOKIE,
                        security_scheme_in="cookie",
                        description="Browser session from POST /api/auth/session/; unsafe "
                        "methods also need the X-CSRFToken header.",
                    ),
                    "OpenAIKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="On /v1: a Parley API token (POST /api/auth/token/) or "
                        "JWT access token, as an OpenAI client's api_key.",
                    ),
                    "ApiToken": SecurityScheme(
                        type="apiKey",
                        name="Authorization",
                        security_scheme_in="header",
                        description="`Token <token>` from POST /api/auth/token/.",
                    ),
                }
            ),
        ),
    )
    document_errors(app)
    list_models(app, [model.id for model in container.catalog().available()])
    refuse_nul_in_message_texts(app)
    app.state.allowed_methods = allowed_methods(app)
    wrap_with_request_context(app, log_every_request=config.access_log())
    return app


def build_container(settings: Settings) -> Container:
    container = Container()
    container.config.from_dict(settings.as_config())
    return container


def configure_logging(settings: Settings) -> None:
    logs.configure_logging(settings.log_level, settings.log_format)


def app_from_environment() -> Litestar:
    """The ASGI application factory used by ``parley serve`` (uvicorn ``--factory``)."""
    settings = with_secret_key(load_settings())
    configure_logging(settings)
    container = build_container(settings)
    app = create_app(container, tracing_from_environment(container, os.environ))
    mark_interrupted_turns(app, container)
    app.on_startup.append(_freeze_what_startup_made)
    return app


def _freeze_what_startup_made() -> None:
    """What exists once the app has started (modules, routes, schemas, the container's
    singletons: ~200,000 objects) lives as long as the process, so the cyclic garbage
    collector is told to stop scanning it. Without this each full collection walked it
    all, a ~50 ms pause every few thousand requests and ~4% of a served request's CPU
    (bench/results, "Where Parley's CPU goes")."""
    gc.collect()
    gc.freeze()
