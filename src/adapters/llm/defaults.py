"""The providers and models Parley knows out of the box.

One adapter per wire format, not per vendor: OpenAI, Moonshot, DashScope (Qwen),
DeepSeek and local servers all speak OpenAI-compatible chat completions; Gemini has its
own. Operators add, rename, remove or re-point models in the TOML file."""

from __future__ import annotations

from dataclasses import dataclass

OPENAI_FORMAT = "openai"
GEMINI_FORMAT = "gemini"


@dataclass(frozen=True, kw_only=True)
class BuiltinProvider:
    name: str
    display: str
    wire_format: str
    default_base_url: str
    key_env: str
    base_url_env: str
    keyless: bool = False  # local servers: enabled by a base URL alone


@dataclass(frozen=True, kw_only=True)
class BuiltinModel:
    id: str
    name: str
    provider: str
    upstream: str
    supports_images: bool = False
    context_window: int = 8192


BUILTIN_PROVIDERS = (
    BuiltinProvider(
        name="openai",
        display="OpenAI",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
    ),
    BuiltinProvider(
        name="gemini",
        display="Google",
        wire_format=GEMINI_FORMAT,
        default_base_url="https://generativelanguage.googleapis.com",
        key_env="GEMINI_API_KEY",
        base_url_env="GEMINI_BASE_URL",
    ),
    BuiltinProvider(
        name="moonshot",
        display="Moonshot",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://api.moonshot.cn/v1",
        key_env="MOONSHOT_API_KEY",
        base_url_env="MOONSHOT_BASE_URL",
    ),
    BuiltinProvider(
        name="dashscope",
        display="Alibaba Cloud",
        wire_format=OPENAI_FORMAT,
        default_base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        key_env="DASHSCOPE_API_KEY",
        base_url_env="DASHSCOPE_BASE_URL",
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

BUILTIN_MODELS = (
    BuiltinModel(
        id="gpt-4o-mini",
        name="GPT-4o mini",
        provider="openai",
        upstream="gpt-4o-mini",
        supports_images=True,
        context_window=128_000,
    ),
    BuiltinModel(
        id="gpt-4o",
        name="GPT-4o",
        provider="openai",
        upstream="gpt-4o",
        supports_images=True,
        context_window=128_000,
    ),
    BuiltinModel(
        id="gpt-3.5-turbo",
        name="GPT-3.5 Turbo",
        provider="openai",
        upstream="gpt-3.5-turbo",
        context_window=16_385,
    ),
    BuiltinModel(
        id="gemini-2.0-flash",
        name="Gemini 2.0 Flash",
        provider="gemini",
        upstream="gemini-2.0-flash",
        supports_images=True,
        context_window=1_048_576,
    ),
    BuiltinModel(
        id="gemini-pro",
        name="Gemini Pro",
        provider="gemini",
        upstream="gemini-1.5-pro",
        supports_images=True,
        context_window=2_097_152,
    ),
    BuiltinModel(
        id="moonshot-v1-8k",
        name="Kimi (moonshot-v1-8k)",
        provider="moonshot",
        upstream="moonshot-v1-8k",
        context_window=8_192,
    ),
    BuiltinModel(
        id="moonshot-v1-32k",
        name="Kimi (moonshot-v1-32k)",
        provider="moonshot",
        upstream="moonshot-v1-32k",
        context_window=32_768,
    ),
    BuiltinModel(
        id="qwen-turbo",
        name="Qwen Turbo",
        provider="dashscope",
        upstream="qwen-turbo",
        context_window=131_072,
    ),
    BuiltinModel(
        id="qwen-plus",
        name="Qwen Plus",
        provider="dashscope",
        upstream="qwen-plus",
        context_window=131_072,
    ),
    BuiltinModel(
        id="qwen-max",
        name="Qwen Max",
        provider="dashscope",
        upstream="qwen-max",
        context_window=32_768,
    ),
    BuiltinModel(
        id="qwen-vl-plus",
        name="Qwen VL Plus",
        provider="dashscope",
        upstream="qwen-vl-plus",
        supports_images=True,
        context_window=32_768,
    ),
    BuiltinModel(
        id="deepseek-chat",
        name="DeepSeek Chat",
        provider="deepseek",
        upstream="deepseek-chat",
        context_window=65_536,
    ),
)
