"""Constraints that appear in the OpenAPI document but are enforced by the domain.

The domain is the one validator (its messages and error codes are the API's); these
annotations only tell clients and fuzzers the same limits, from the same constants."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from domain.chat_settings import MAX_MAX_TOKENS, MAX_TEMPERATURE, MIN_MAX_TOKENS, MIN_TEMPERATURE
from domain.conversation import TITLE_MAX_CHARS
from domain.quota import QuotaPolicy
from domain.users import (
    EMAIL_CORE_PATTERN,
    EMAIL_MAX_CHARS,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    USERNAME_MAX_CHARS,
)


def documented(**schema: Any) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"extra": schema})


_DEFAULT_MAX_MESSAGE = QuotaPolicy().max_message_chars

MessageText = Annotated[
    str,
    documented(
        minLength=1,
        maxLength=_DEFAULT_MAX_MESSAGE,
        pattern=r"\S",
        description=f"1 to {_DEFAULT_MAX_MESSAGE} characters (PARLEY_MAX_MESSAGE_CHARS), "
        "not only whitespace.",
    ),
]
Username = Annotated[
    str, documented(minLength=1, maxLength=USERNAME_MAX_CHARS, pattern=r"^[A-Za-z0-9_.@+-]+$")
]
Email = Annotated[
    str, documented(minLength=3, maxLength=EMAIL_MAX_CHARS, pattern=f"^{EMAIL_CORE_PATTERN}$")
]
NewPassword = Annotated[
    str,
    documented(
        minLength=PASSWORD_MIN_CHARS,
        maxLength=PASSWORD_MAX_CHARS,
        pattern=r"\D",
        description="At least 8 characters, not entirely numeric, not the username.",
    ),
]
Secret = Annotated[str, documented(minLength=1)]
Temperature = Annotated[float, documented(minimum=MIN_TEMPERATURE, maximum=MAX_TEMPERATURE)]
MaxTokens = Annotated[int, documented(minimum=MIN_MAX_TOKENS, maximum=MAX_MAX_TOKENS)]
ModelId = Annotated[
    str, documented(minLength=1, maxLength=100, description="A model id from /api/v1/models/.")
]
Title = Annotated[str, documented(maxLength=TITLE_MAX_CHARS)]
ImageUrl = Annotated[
    str,
    documented(
        pattern=r"^(https?://|data:image/)",
        description="An http(s) URL of a public host, or a base64 data: URI of an image.",
    ),
]
Status = Annotated[str, documented(enum=["active", "closed"])]
Id = Annotated[int, documented(minimum=1)]
