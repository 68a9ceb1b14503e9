"""Which model ids each fake provider flavour serves, and which it answers as retired.

Checked on 2026-12-01 against the providers' models and deprecations pages (as stored
copies: where sources disagree, the entry says so). Each entry of ``CURRENT`` is
``{"max_output", "images", "reasoning", "fixed_sampling"}``:
``max_output`` is the largest ``max_tokens`` / ``max_completion_tokens`` the model accepts,
``images`` whether it takes image input, ``reasoning`` whether it is a reasoning model
(OpenAI: rejects ``max_tokens`` and non-default ``temperature``; DashScope open-source
qwen3: needs ``enable_thinking: false`` on non-streaming calls), ``fixed_sampling`` whether
it refuses any temperature but its default (Claude 4.7+/5.x, Gemini 3.6+, Kimi K2.6+:
"invalid temperature: only 1 is allowed for this model"). ``RETIRED`` maps a shut
down id to "shutdown date, source URL"; requests for it get the provider's 404.

A model in neither table is unknown to the provider (the same 404) unless the test allowed
it: ``FakeLLMServer(models=(...))`` or ``server.allow_models(...)`` (any flavour).
"""

from __future__ import annotations

from typing import Final, TypedDict

__all__ = ["CURRENT", "FLAVOURS", "RETIRED", "ModelInfo", "lookup"]


class ModelInfo(TypedDict):
    max_output: int
    images: bool
    reasoning: bool
    fixed_sampling: bool


def _m(
    max_output: int, images: bool = False, reasoning: bool = False, fixed_sampling: bool = False
) -> ModelInfo:
    return {
        "max_output": max_output,
        "images": images,
        "reasoning": reasoning,
        "fixed_sampling": fixed_sampling,
    }


FLAVOURS: Final = (
    "openai",
    "moonshot",
    "dashscope",
    "deepseek",
    "ollama",
    "vllm",
    "gemini",
    "anthropic",
)

# fmt: off
CURRENT: Final[dict[str, dict[str, ModelInfo]]] = {
    "openai": {  # every current chat model is a reasoning model (GPT-5 and later)
        "gpt-6-luna": _m(128000, images=True, reasoning=True),
        "gpt-6.1-sol": _m(128000, images=True, reasoning=True),
        "gpt-6.1-terra": _m(128000, images=True, reasoning=True),
        "gpt-6.2-sol": _m(128000, images=True, reasoning=True),
        "gpt-5.6-sol": _m(128000, images=True, reasoning=True),
        "gpt-5.6-luna": _m(128000, images=True, reasoning=True),
        # deprecated, shut down 2027-01-14; still answering on 2026-12-01
        "gpt-4o": _m(16384, images=True),
        "gpt-4o-mini": _m(16384, images=True),
        "gpt-4.1": _m(32768, images=True),
        "gpt-4.1-mini": _m(32768, images=True),
        # shut down 2026-12-11
        "gpt-5": _m(128000, images=True, reasoning=True),
        "gpt-5-mini": _m(128000, images=True, reasoning=True),
        "o3": _m(100000, images=True, reasoning=True),
    },
    "moonshot": {  # K2.6 and K3 take only their own temperature
        "kimi-k2.6": _m(262144, images=True, reasoning=True, fixed_sampling=True),
        "kimi-k3": _m(1048576, images=True, reasoning=True, fixed_sampling=True),
        "kimi-k3.1-pro": _m(1048576, images=True, reasoning=True, fixed_sampling=True),
        "kimi-k2.7-code": _m(262144, reasoning=True, fixed_sampling=True),
    },
    "dashscope": {
        "qwen3.7-plus": _m(65536, images=True, reasoning=True),
        "qwen3.7-max": _m(65536, reasoning=True),
        "qwen3.6-flash": _m(65536, reasoning=True),
        "qwen3.7-flash": _m(65536, images=True, reasoning=True),
        "qwen-plus": _m(32768),  # hybrid thinking, off by default
        "qwen-max": _m(8192),
        "qwen-flash": _m(32768),
    },
    "deepseek": {
        "deepseek-v4-flash": _m(393216, reasoning=True),
        "deepseek-v4-pro": _m(393216, reasoning=True),
    },
    "ollama": {  # what a typical local install has pulled; "name" means "name:latest"
        "llama3.1:8b": _m(131072),
        "llama3.2:latest": _m(131072),
        "llama3.2-vision:latest": _m(131072, images=True),
        "qwen3:8b": _m(40960, reasoning=True),
        "gemma3:4b": _m(131072, images=True),
        "llava:latest": _m(4096, images=True),
        "deepseek-r1:8b": _m(131072, reasoning=True),
    },
    "vllm": {  # served model names as given to `vllm serve`
        "Qwen/Qwen2.5-7B-Instruct": _m(32768),
        "Qwen/Qwen2.5-VL-7B-Instruct": _m(32768, images=True),
        "meta-llama/Llama-3.1-8B-Instruct": _m(131072),
    },
    "gemini": {  # 3.6 and later take only their default temperature
        "gemini-3.8-flash": _m(65536, images=True, reasoning=True, fixed_sampling=True),
        "gemini-3.6-flash": _m(65536, images=True, reasoning=True, fixed_sampling=True),
        "gemini-3.5-flash-lite": _m(65536, images=True, reasoning=True),
        "gemini-3.1-flash-lite": _m(65536, images=True, reasoning=True),
        "gemini-4-argon": _m(65536, images=True, reasoning=True, fixed_sampling=True),
        "gemini-3.1-pro-preview": _m(65536, images=True, reasoning=True),
    },
    "anthropic": {  # Opus 4.7 and later, Sonnet 5 and later: no sampling parameters
        "claude-haiku-5-5": _m(128000, images=True, reasoning=True, fixed_sampling=True),
        "claude-sonnet-5-5": _m(128000, images=True, reasoning=True, fixed_sampling=True),
        "claude-opus-5-5": _m(128000, images=True, reasoning=True, fixed_sampling=True),
        "claude-sonnet-5": _m(128000, images=True, reasoning=True, fixed_sampling=True),
        "claude-opus-4-8": _m(128000, images=True, reasoning=True, fixed_sampling=True),
        "claude-sonnet-4-6": _m(64000, images=True, reasoning=True),
        "claude-haiku-4-5-20251001": _m(64000, images=True, reasoning=True),
        "claude-haiku-4-5": _m(64000, images=True, reasoning=True),
        "claude-sonnet-4-5-20250929": _m(64000, images=True, reasoning=True),
        "claude-sonnet-4-5": _m(64000, images=True, reasoning=True),
    },
}

_OPENAI_DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
_GEMINI_DEPRECATIONS = "https://ai.google.dev/gemini-api/docs/deprecations"
_ANTHROPIC_DEPRECATIONS = "https://platform.claude.com/docs/en/about-claude/model-deprecations"
_MOONSHOT_MODELS = "https://platform.kimi.ai/docs/models"
_DASHSCOPE_NOTICE = "Model Studio notice 731 (alibabacloud.com), effective 2026-10-10"
_DEEPSEEK_NEWS = "https://api-docs.deepseek.com/news/news260424"

RETIRED: Final[dict[str, dict[str, str]]] = {
    "openai": {
        "gpt-3.5-turbo": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "gpt-3.5-turbo-0125": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "gpt-4": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "gpt-4-turbo": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "o1": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "o3-mini": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "o4-mini": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "gpt-4.1-nano": f"2026-10-23, {_OPENAI_DEPRECATIONS}",
        "gpt-5-chat-latest": f"2026-07-23, {_OPENAI_DEPRECATIONS}",
        "gpt-5.1-chat-latest": f"2026-07-23, {_OPENAI_DEPRECATIONS}",
        "chatgpt-4o-latest": f"2026-02-17, {_OPENAI_DEPRECATIONS}",
        "o1-mini": f"2025-10-27, {_OPENAI_DEPRECATIONS}",
    },
    "moonshot": {
        "moonshot-v1-8k": f"2026-08-31, {_MOONSHOT_MODELS}",
        "moonshot-v1-32k": f"2026-08-31, {_MOONSHOT_MODELS}",
        "moonshot-v1-128k": f"2026-08-31, {_MOONSHOT_MODELS}",
        "kimi-k2.5": f"2026-08-31, {_MOONSHOT_MODELS}",
        "kimi-latest": f"2026 (404 by 2026-09), {_MOONSHOT_MODELS}",
        "kimi-k2-0905-preview": f"2026-05-25, {_MOONSHOT_MODELS}",
        "kimi-k2-turbo-preview": f"2026-05-25, {_MOONSHOT_MODELS}",
        "kimi-k2-thinking": f"2026-05-25, {_MOONSHOT_MODELS}",
        "kimi-k2-0711-preview": f"2026-05-25, {_MOONSHOT_MODELS}",
    },
    "dashscope": {
        "qwen-turbo": f"2026-10-10, {_DASHSCOPE_NOTICE}",
        "qwen-vl-plus": f"2026-10-10, {_DASHSCOPE_NOTICE}",
        "qwen-vl-max": f"2026-10-10, {_DASHSCOPE_NOTICE}",
        "qwen3-max": f"2026-10-10, {_DASHSCOPE_NOTICE}",
        "qwen3-32b": f"2026-10-10, {_DASHSCOPE_NOTICE}",
        "qwen3-235b-a22b": f"2026-10-10, {_DASHSCOPE_NOTICE}",
    },
    "deepseek": {
        "deepseek-chat": f"2026-07-24, {_DEEPSEEK_NEWS}",
        "deepseek-reasoner": f"2026-07-24, {_DEEPSEEK_NEWS}",
    },
    "ollama": {},
    "vllm": {},
    "gemini": {
        "gemini-pro": f"2025-02-15, {_GEMINI_DEPRECATIONS}",
        "gemini-1.0-pro": f"2025-04-09, {_GEMINI_DEPRECATIONS}",
        "gemini-1.5-pro": f"2025-09-24, {_GEMINI_DEPRECATIONS}",
        "gemini-1.5-flash": f"2025-09-24, {_GEMINI_DEPRECATIONS}",
        "gemini-2.0-flash": f"2026-06-01, {_GEMINI_DEPRECATIONS}",
        "gemini-2.0-flash-lite": f"2026-06-01, {_GEMINI_DEPRECATIONS}",
        "gemini-2.5-pro": f"2026-12-01 (sources disagree: 2026-10-20), {_GEMINI_DEPRECATIONS}",
        "gemini-2.5-flash": f"2026-12-01 (sources disagree: 2026-10-20), {_GEMINI_DEPRECATIONS}",
        "gemini-3-pro-preview": f"2026-03-09, {_GEMINI_DEPRECATIONS}",
    },
    "anthropic": {
        "claude-3-5-sonnet-20240620": f"2025-10-22, {_ANTHROPIC_DEPRECATIONS}",
        "claude-3-5-sonnet-20241022": f"2025-10-22, {_ANTHROPIC_DEPRECATIONS}",
        "claude-3-opus-20240229": f"2026-01-05, {_ANTHROPIC_DEPRECATIONS}",
        "claude-3-7-sonnet-20250219": f"2026-02-19, {_ANTHROPIC_DEPRECATIONS}",
        "claude-3-5-haiku-20241022": f"2026-02-19, {_ANTHROPIC_DEPRECATIONS}",
        "claude-3-haiku-20240307": f"2026-04-20, {_ANTHROPIC_DEPRECATIONS}",
        "claude-sonnet-4-20250514": f"2026-06-15, {_ANTHROPIC_DEPRECATIONS}",
        "claude-opus-4-20250514": f"2026-06-15, {_ANTHROPIC_DEPRECATIONS}",
        "claude-sonnet-4-0": f"2026-06-15, {_ANTHROPIC_DEPRECATIONS}",
        "claude-opus-4-1": f"2026-08-05, {_ANTHROPIC_DEPRECATIONS}",
        "claude-opus-4-1-20250805": f"2026-08-05, {_ANTHROPIC_DEPRECATIONS}",
    },
}
# fmt: on

# What an explicitly allowed, made-up model can do: everything a plain chat model can.
ALLOWED_INFO: Final[ModelInfo] = _m(1 << 20, images=True)


def lookup(flavour: str, model: str, allowed: frozenset[str] | set[str]) -> ModelInfo | None:
    """The model's capabilities, or None when this flavour would answer 404 for it."""
    if model in allowed:
        return CURRENT.get(flavour, {}).get(model, ALLOWED_INFO)
    if model in RETIRED.get(flavour, {}):
        return None
    current = CURRENT.get(flavour, {})
    if flavour == "ollama" and ":" not in model:
        return current.get(f"{model}:latest")
    return current.get(model)
