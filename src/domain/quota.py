"""Quotas a user lives within: active conversations and message size."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import ActiveConversationLimit, InvalidInput, MessageTooLong


@dataclass(frozen=True, kw_only=True)
class QuotaPolicy:
    max_active_conversations: int = 10
    max_message_chars: int = 4000

    def __post_init__(self) -> None:
        if self.max_active_conversations < 1:
            raise ValueError("max_active_conversations must be at least 1")
        if self.max_message_chars < 1:
            raise ValueError("max_message_chars must be at least 1")

    def check_can_activate(self, active_conversations: int) -> None:
        """One more active conversation is allowed only below the limit."""
        if active_conversations >= self.max_active_conversations:
            raise ActiveConversationLimit(
                f"You already have {self.max_active_conversations} active conversations; "
                "close one before starting or reopening another."
            )

    def check_message(self, text: str) -> None:
        """A message has 1..max_message_chars characters and is not only whitespace."""
        if not text.strip():
            raise InvalidInput({"message": ["This field may not be blank."]})
        if len(text) > self.max_message_chars:
            raise MessageTooLong(self.max_message_chars)
