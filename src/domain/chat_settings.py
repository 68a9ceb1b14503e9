"""A user's chat settings: which model answers and how."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from domain.errors import InvalidInput

MIN_TEMPERATURE = 0.0
MAX_TEMPERATURE = 2.0
MIN_MAX_TOKENS = 1
MAX_MAX_TOKENS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class ChatSettings:
    """Validates itself on construction; every failing field is reported at once."""

    ai_model: str
    temperature: float
    max_tokens: int

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if not self.ai_model.strip():
            errors["ai_model"] = ["This field may not be blank."]
        if not (
            math.isfinite(self.temperature)
            and MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE
        ):
            errors["temperature"] = [
                f"Ensure this value is between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}."
            ]
        if not MIN_MAX_TOKENS <= self.max_tokens <= MAX_MAX_TOKENS:
            errors["max_tokens"] = [
                f"Ensure this value is between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}."
            ]
        if errors:
            raise InvalidInput(errors)

    def changed(
        self,
        *,
        ai_model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatSettings:
        """A copy with the given fields replaced (and validated); ``None`` keeps a field."""
        return replace(
            self,
            ai_model=self.ai_model if ai_model is None else ai_model,
            temperature=self.temperature if temperature is None else temperature,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
        )


@dataclass
class UserChatSettings:
    id: int
    user_id: int
    settings: ChatSettings
