"""Build the model catalogue and the routed ChatModel from configuration.

A built-in provider is enabled by its API key (a keyless local server by its base URL);
its built-in models then appear. The TOML ``[models.ID]`` tables add or re-point models
(``provider``, ``upstream``, ``name``, ``images``, ``context_window``, ``temperature``
-- false for a model that takes only its default temperature, ``input_price`` and
``output_price`` per million tokens),
``remove_models`` hides some, ``fallbacks`` chains them. The offline ``echo`` model is
on when no provider is, or when ``keep_echo`` says so. ``cooldown_failures`` consecutive
provider failures cool a model down for ``cooldown_seconds`` (``adapters.llm.cooldown``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from adapters.llm.anthropic import AnthropicClient
from adapters.llm.catalog import StaticModelCatalog
from adapters.llm.cooldown import Cooldowns
from adapters.llm.defaults import (
    ANTHROPIC_FORMAT,
    BUILTIN_MODELS,
    BUILTIN_PROVIDERS,
    COMMON_IMAGES,
    GEMINI_FORMAT,
    OPENAI_FORMAT,
    WIRE_FORMATS,
)
from adapters.llm.echo import ECHO_MODEL_ID, ECHO_PROVIDER, EchoChatModel
from adapters.llm.gemini import GeminiClient
from adapters.llm.images import ImageFetcher
from adapters.llm.openai_compatible import OpenAICompatibleClient
from adapters.llm.routing import ProviderClient, RetryPolicy, Route, RoutedChatModel, RouteEvents
from adapters.llm.transport import provider_http_client
from adapters.llm.upstream import Dialect, UpstreamModel
from application.ports import ModelInfo
from domain.budgets import Price

ECHO_MODEL = ModelInfo(
    id=ECHO_MODEL_ID,
    name="Echo (offline test model)",
    provider=ECHO_PROVIDER,
    supports_images=True,
    context_window=1_000_000,
    image_types=frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"}),
)


class ModelConfigError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class LlmConfig:
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    remove_models: Sequence[str] = ()
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    keep_echo: bool = False
    default_model: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cooldown_failures: int = 3
    cooldown_seconds: float = 30.0
    route_events: RouteEvents | None = None
    allow_private_image_urls: bool = False
    image_max_bytes: int = 5 * 1024 * 1024


@dataclass
class LlmStack:
    catalog: StaticModelCatalog
    chat_model: RoutedChatModel
    images: ImageFetcher
    clients: list[httpx.AsyncClient]
    # This worker's cool-downs (what the admin's provider health view shows).
    cooldowns: Cooldowns
    # The providers' keys, for masking wherever a provider's words are shown.
    api_keys: tuple[str, ...] = field(default=(), repr=False)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


@dataclass(frozen=True)
class _Provider:
    name: str
    display: str
    wire_format: str
    base_url: str
    api_key: str = field(repr=False)
    dialect: Dialect = field(default_factory=Dialect)
    image_types: frozenset[str] = COMMON_IMAGES


def _enabled_providers(config: LlmConfig) -> dict[str, _Provider]:
    builtin = {p.name: p for p in BUILTIN_PROVIDERS}
    enabled: dict[str, _Provider] = {}
    for name in dict.fromkeys([*builtin, *config.providers]):
        table = dict(config.providers.get(name, {}))
        known = builtin.get(name)
        wire_format = str(table.get("kind", known.wire_format if known else OPENAI_FORMAT))
        if wire_format not in WIRE_FORMATS:
            raise ModelConfigError(
                f"provider {name}: kind must be one of " + ", ".join(map(repr, WIRE_FORMATS))
            )
        api_key = str(table.get("api_key", ""))
        base_url = str(table.get("base_url", known.default_base_url if known else ""))
        keyless = bool(table.get("keyless", known.keyless if known else True))
        if api_key or (keyless and "base_url" in table):
            if not base_url:
                raise ModelConfigError(f"provider {name}: base_url is required")
            display = str(table.get("display", known.display if known else name))
            enabled[name] = _Provider(
                name,
                display,
                wire_format,
                base_url,
                api_key,
                known.dialect if known else Dialect(),
                known.image_types if known else COMMON_IMAGES,
            )
    return enabled


def build_llm(config: LlmConfig) -> LlmStack:
    if config.cooldown_failures < 0 or config.cooldown_seconds < 0:
        raise ModelConfigError(
            "provider_cooldown_failures and provider_cooldown_seconds must be 0 or more"
        )
    providers = _enabled_providers(config)
    timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
    clients: list[httpx.AsyncClient] = []

    def http_client() -> httpx.AsyncClient:
        client = provider_http_client(timeout)
        clients.append(client)
        return client

    # Image downloads are rare and go anywhere on the internet: plain httpx, which also
    # honours the operator's proxy settings.
    image_client = httpx.AsyncClient(timeout=timeout)
    clients.append(image_client)
    images = ImageFetcher(
        image_client,
        max_bytes=config.image_max_bytes,
        allow_private=config.allow_private_image_urls,
    )
    clients_by_format: dict[str, type[OpenAICompatibleClient | GeminiClient | AnthropicClient]] = {
        OPENAI_FORMAT: OpenAICompatibleClient,
        GEMINI_FORMAT: GeminiClient,
        ANTHROPIC_FORMAT: AnthropicClient,
    }
    provider_clients: dict[str, ProviderClient] = {
        provider.name: clients_by_format[provider.wire_format](
            name=provider.display,
            base_url=provider.base_url,
            api_key=provider.api_key,
            http=http_client(),
            dialect=provider.dialect,
        )
        for provider in providers.values()
    }

    routes: dict[str, Route] = {}
    for model_id, (info, provider_name, upstream) in _routes(config, providers).items():
        routes[model_id] = Route(
            model=info, client=provider_clients[provider_name], upstream=upstream
        )
    if not providers or config.keep_echo:
        routes[ECHO_MODEL_ID] = Route(
            model=ECHO_MODEL, client=EchoChatModel(), upstream=UpstreamModel(name="echo")
        )
    for model_id in config.remove_models:
        routes.pop(model_id, None)
    if not routes:
        raise ModelConfigError("no model is available: configure a provider or keep_echo")

    for model_id, chain in config.fallbacks.items():
        for target in [model_id, *chain]:
            if target not in routes:
                raise ModelConfigError(f"fallbacks: model {target!r} is not available")
    default = config.default_model or (
        ECHO_MODEL_ID if ECHO_MODEL_ID in routes else next(iter(routes))
    )
    if default not in routes:
        raise ModelConfigError(f"default_model {default!r} is not an available model")
    catalog = StaticModelCatalog([route.model for route in routes.values()], default)
    cooldowns = Cooldowns(failures=config.cooldown_failures, seconds=config.cooldown_seconds)
    chat_model = RoutedChatModel(
        routes, config.fallbacks, config.retry, cooldowns=cooldowns, events=config.route_events
    )
    return LlmStack(
        catalog=catalog,
        chat_model=chat_model,
        images=images,
        clients=clients,
        cooldowns=cooldowns,
        api_keys=tuple(p.api_key for p in providers.values() if p.api_key),
    )


def _price(model_id: str, spec: Mapping[str, Any], known: Price | None) -> Price | None:
    """``input_price`` and ``output_price``: the model's prices per million tokens, both
    or neither."""
    given = [spec.get(key) for key in ("input_price", "output_price")]
    if given == [None, None]:
        return known
    try:
        if None in given:
            raise ValueError
        return Price(
            input_per_million=Decimal(str(given[0])), output_per_million=Decimal(str(given[1]))
        )
    except (ValueError, ArithmeticError):
        raise ModelConfigError(
            f"model {model_id}: input_price and output_price are both needed, as amounts "
            "of 0 or more per million tokens"
        ) from None


def _routes(
    config: LlmConfig, providers: Mapping[str, _Provider]
) -> dict[str, tuple[ModelInfo, str, UpstreamModel]]:
    table: dict[str, tuple[ModelInfo, str, UpstreamModel]] = {}
    for builtin in BUILTIN_MODELS:
        if builtin.provider in providers:
            info = ModelInfo(
                id=builtin.id,
                name=builtin.name,
                provider=providers[builtin.provider].display,
                supports_images=builtin.supports_images,
                context_window=builtin.context_window,
                image_types=providers[builtin.provider].image_types,
                supports_tools=providers[builtin.provider].wire_format == OPENAI_FORMAT,
            )
            upstream = UpstreamModel(
                name=builtin.upstream, takes_temperature=builtin.takes_temperature
            )
            table[builtin.id] = (info, builtin.provider, upstream)
    for model_id, spec in config.models.items():
        existing = table.get(model_id)
        provider = str(spec.get("provider", existing[1] if existing else ""))
        if provider not in providers:
            if (
                provider
                and provider not in {p.name for p in BUILTIN_PROVIDERS}
                and (provider not in config.providers)
            ):
                raise ModelConfigError(f"model {model_id}: unknown provider {provider!r}")
            continue  # its provider is not configured: not usable now
        info = ModelInfo(
            id=model_id,
            name=str(spec.get("name", existing[0].name if existing else model_id)),
            provider=providers[provider].display,
            supports_images=bool(
                spec.get("images", existing[0].supports_images if existing else False)
            ),
            context_window=int(
                spec.get("context_window", existing[0].context_window if existing else 8192)
            ),
            image_types=providers[provider].image_types,
            # Tools reach a model on the OpenAI wire format unless the operator says its
            # server takes none (``tools = false``); the other wire formats get none yet.
            supports_tools=providers[provider].wire_format == OPENAI_FORMAT
            and bool(spec.get("tools", existing[0].supports_tools if existing else True)),
            price=_price(model_id, spec, existing[0].price if existing else None),
        )
        upstream = UpstreamModel(
            name=str(spec.get("upstream", existing[2].name if existing else model_id)),
            takes_temperature=bool(
                spec.get("temperature", existing[2].takes_temperature if existing else True)
            ),
        )
        table[model_id] = (info, provider, upstream)
    return table
