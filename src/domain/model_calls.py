"""Model calls no conversation keeps: what Parley's OpenAI-compatible endpoint answered
when the caller bound no conversation (as OpenAI's API, it keeps no messages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.conversation import MessageStatus


@dataclass(frozen=True, kw_only=True)
class ModelCall:
    """One call: who made it, which model answered (the requested one if none did), what
    the provider billed and how it ended. It counts in usage as a reply does; it holds no
    text, neither the prompt nor the answer."""

    user_id: int
    model: str
    provider: str | None
    status: MessageStatus
    created_at: datetime
    latency_ms: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    error_code: str | None = None
    billed_tokens: int = 0  # as a reply's (``NewMessage``)
    cost_nanos: int = 0
