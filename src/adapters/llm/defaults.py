"""The providers and models Parley knows out of the box.

One adapter per wire format, not per vendor: OpenAI, Moonshot, DashScope (Qwen),
DeepSeek and local servers all speak OpenAI-compatible chat completions; Gemini and
Anthropic have their own. Operators add, rename, remove or re-point models in the TOML
file."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.llm.upstream import Dialect

OPENAI_FORMAT = "openai"
GEMINI_FORMAT = "gemini"
ANTHROPIC_FORMAT = "anthropic"
WIRE_FORMATS = (OPENAI_FORMAT, GEMINI_FORMAT, ANTHROPIC_FORMAT)

# The image types each provider documents (Gemini takes no GIF; Ollama and vLLM's
# vision models: PNG, JPEG, WebP).
COMMON_IMAGES = frozenset({"image/png", "image/jpeg", "image/webp"})
OPENAI_IMAGES = COMMON_IMAGES | {"image/gif"}
GEMINI_IMAGES = COMMON_IMAGES | {"image/heic", "image/heif"}
ANTHROPIC_IMAGES = COMMON_IMAGES | {"image/gif"}

# The date the built-in model ids were last checked against each provider's models and
# deprecations pages (README, "Providers and models").
CATALOGUE_CHECKED = "2026-12-01"


@dataclass(frozen=True, kw_only=True)
class BuiltinProvider:
    name: str
    display: str
    wire_format: str
    default_base_url: str
    key_env: str
    base_url_env: str
    keyless: bool = False  # local servers: enabled by a base URL alone
    dialect: Dialect = field(default_factory=Dialect)
    image_types: frozenset[str] = COMMON_IMAGES


@dataclass(frozen=True, kw_only=True)
class BuiltinModel:
    id: str
    name: str
    provider: str
    upstream: str
    supports_images: bool = False
    context_window: int = 8192
    takes_temperature: bool = True


BUILTIN_PROVIDERS = (
    BuiltinProvider(
        name="openai",
        display="OpenAI",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        # max_tokens is refused by every reasoning model; max_completion_tokens is taken
        # by all of OpenAI's chat models.
        dialect=Dialect(max_tokens_field="max_completion_tokens"),
        image_types=OPENAI_IMAGES,
    ),
    BuiltinProvider(
        name="gemini",
        display="Google",
        wire_format=GEMINI_FORMAT,
        default_base_url="https://generativelanguage.googleapis.com",
        key_env="GEMINI_API_KEY",
        base_url_env="GEMINI_BASE_URL",
        image_types=GEMINI_IMAGES,
    ),
    BuiltinProvider(
        name="anthropic",
        display="Anthropic",
        wire_format=ANTHROPIC_FORMAT,
        default_base_url="https://api.anthropic.com",
        key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
        dialect=Dialect(temperature_max=1.0),
        image_types=ANTHROPIC_IMAGES,
    ),
    BuiltinProvider(
        name="moonshot",
        display="Moonshot",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://api.moonshot.cn/v1",
        key_env="MOONSHOT_API_KEY",
        base_url_env="MOONSHOT_BASE_URL",
        # Kimi takes temperature 0-1 (Parley's setting is 0-2): higher is sent as 1.
        dialect=Dialect(temperature_max=1.0, max_tokens_field="max_completion_tokens"),
    ),
    BuiltinProvider(
        name="dashscope",
        display="Alibaba Cloud",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        key_env="DASHSCOPE_API_KEY",
        base_url_env="DASHSCOPE_BASE_URL",
        # Temperature is [0, 2) there; hybrid-thinking Qwen models refuse a non-streaming
        # call unless thinking is off.
        dialect=Dialect(temperature_max=1.99, non_stream_extra=(("enable_thinking", False),)),
    ),
    BuiltinProvider(
        name="deepseek",
        display="DeepSeek",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://api.deepseek.com/v1",
        key_env="DEEPSEEK_API_KEY",
        base_url_env="DEEPSEEK_BASE_URL",
    ),
    BuiltinProvider(
        name="local",
        display="Local",
        wire_format=OPENAI_FORMAT,
        default_base_url="",
        key_env="PARLEY_LOCAL_API_KEY",
        base_url_env="PARLEY_LOCAL_BASE_URL",
        keyless=True,
    ),
)

# Live on CATALOGUE_CHECKED. Most current flagship models take only their default
# temperature (takes_temperature False): the user's setting is not sent to them.
BUILTIN_MODELS = (
    BuiltinModel(
        id="gpt-6-luna",
        name="GPT-6 Luna",
        provider="openai",
        upstream="gpt-6-luna",
        supports_images=True,
        context_window=1_050_000,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="gpt-6.1-sol",
        name="GPT-6.1 Sol",
        provider="openai",
        upstream="gpt-6.1-sol",
        supports_images=True,
        context_window=1_050_000,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="gemini-3.8-flash",
        name="Gemini 3.8 Flash",
        provider="gemini",
        upstream="gemini-3.8-flash",
        supports_images=True,
        context_window=1_048_576,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="gemini-3.5-flash-lite",
        name="Gemini 3.5 Flash-Lite",
        provider="gemini",
        upstream="gemini-3.5-flash-lite",
        supports_images=True,
        context_window=1_048_576,
    ),
    BuiltinModel(
        id="claude-sonnet-5-5",
        name="Claude Sonnet 5.5",
        provider="anthropic",
        upstream="claude-sonnet-5-5",
        supports_images=True,
        context_window=1_000_000,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="claude-haiku-5-5",
        name="Claude Haiku 5.5",
        provider="anthropic",
        upstream="claude-haiku-5-5",
        supports_images=True,
        context_window=1_000_000,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="kimi-k2.6",
        name="Kimi K2.6",
        provider="moonshot",
        upstream="kimi-k2.6",
        supports_images=True,
        context_window=262_144,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="kimi-k3",
        name="Kimi K3",
        provider="moonshot",
        upstream="kimi-k3",
        supports_images=True,
        context_window=1_048_576,
        takes_temperature=False,
    ),
    BuiltinModel(
        id="qwen3.7-plus",
        name="Qwen3.7 Plus",
        provider="dashscope",
        upstream="qwen3.7-plus",
        supports_images=True,
        context_window=1_000_000,
    ),
    BuiltinModel(
        id="qwen3.6-flash",
        name="Qwen3.6 Flash",
        provider="dashscope",
        upstream="qwen3.6-flash",
        context_window=1_000_000,
    ),
    BuiltinModel(
        id="qwen3.7-max",
        name="Qwen3.7 Max",
        provider="dashscope",
        upstream="qwen3.7-max",
        context_window=1_000_000,
    ),
    BuiltinModel(
        id="deepseek-v4-flash",
        name="DeepSeek V4 Flash",
        provider="deepseek",
        upstream="deepseek-v4-flash",
        context_window=1_000_000,
    ),
    BuiltinModel(
        id="deepseek-v4-pro",
        name="DeepSeek V4 Pro",
        provider="deepseek",
        upstream="deepseek-v4-pro",
        context_window=1_000_000,
    ),
)
