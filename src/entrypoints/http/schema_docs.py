"""Constraints that appear in the OpenAPI document but are enforced by the domain.

The domain is the one validator (its messages and error codes are the API's); these
annotations only tell clients and fuzzers the same limits, from the same constants."""

from __future__ import annotations

from itertools import permutations
from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema

from domain.chat_settings import MAX_MAX_TOKENS, MAX_TEMPERATURE, MIN_MAX_TOKENS, MIN_TEMPERATURE
from domain.conversation import TITLE_MAX_CHARS
from domain.monitoring import SEARCH_MAX_TERMS, SEARCH_TERM_MAX_CHARS, UsageGrouping
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

# PostgreSQL cannot store NUL (U+0000) in text, so no string Parley is sent may hold one
# (bodies.py refuses it in every body field, the admin filters refuse it in queries).
# Every string pattern below excludes it; where a field also needs some other character
# that character is spelled as a class without NUL, since `\S` and `\D` match NUL too.
NO_NUL = r"^[^\u0000]*$"
# Whitespace as Python's str.strip() sees it, which is what the rules use: JSON Schema's
# (ECMA-262) `\s` leaves out the information separators U+001C..U+001F and U+0085.
_BLANK = r"\s\u001c-\u001f\u0085"
# Characters that show nothing: controls, and the zero-width and direction marks.
_INVISIBLE = r"\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff"

MessageText = Annotated[
    str,
    documented(
        minLength=1,
        maxLength=_DEFAULT_MAX_MESSAGE,
        pattern=rf"^[{_BLANK}]*[^{_BLANK}\u0000][^\u0000]*$",
        description=f"1 to {_DEFAULT_MAX_MESSAGE} characters (PARLEY_MAX_MESSAGE_CHARS), "
        "not only whitespace, no NUL.",
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
        # Somewhere a character that is visible and not a digit.
        pattern=rf"^[^\u0000]*[^\d{_BLANK}{_INVISIBLE}][^\u0000]*$",
        description="At least 8 characters, not entirely numeric, with a visible "
        "character, not the username, no NUL.",
    ),
]
Secret = Annotated[str, documented(minLength=1, pattern=NO_NUL)]
Temperature = Annotated[float, documented(minimum=MIN_TEMPERATURE, maximum=MAX_TEMPERATURE)]
MaxTokens = Annotated[int, documented(minimum=MIN_MAX_TOKENS, maximum=MAX_MAX_TOKENS)]
ModelId = Annotated[
    str, documented(minLength=1, maxLength=100, description="A model id from /api/v1/models/.")
]
Title = Annotated[str, documented(maxLength=TITLE_MAX_CHARS, pattern=NO_NUL)]

# What the image check takes as a URL (adapters/llm/images.py): http(s) with a host name
# or IPv4 address (labels of 1..63 characters), a port in range, a path of printable
# ASCII; or a base64 data: URI of an image type Parley takes. Whether the host is public
# and answers with an image is not something a pattern can say: that is a 400 too.
_LABEL = r"[A-Za-z0-9-]{1,63}"
_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_HTTP_URL = rf"https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:[/?#][!-~]*)?"
_BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
_DATA_URI = rf"data:image/(?:png|jpeg|webp|gif|heic|heif);base64,{_BASE64}"
ImageUrl = Annotated[
    str,
    documented(
        pattern=rf"^(?:{_HTTP_URL}|{_DATA_URI})$",
        description="An http(s) URL of a public host that answers with a PNG, JPEG, WebP, "
        "GIF or HEIC image, or a base64 data: URI of one (the bytes must be that image).",
    ),
]
Status = Annotated[str, documented(enum=["active", "closed"])]
Id = Annotated[int, documented(minimum=1)]


# Query parameters are strings the handlers read themselves; these ``schema_extra``
# values (documentation only) say what they take.
QUERY_TEXT: dict[str, Any] = {"pattern": NO_NUL}
QUERY_STATUS: dict[str, Any] = {"enum": ["active", "closed"]}
# One, two or all three keys in any order, each once (``admin_filters.grouping``).
QUERY_GROUP_BY: dict[str, Any] = {
    "enum": [
        ",".join(keys)
        for count in range(1, len(UsageGrouping) + 1)
        for keys in permutations([key.value for key in UsageGrouping], count)
    ]
}
_WORD = rf"[^{_BLANK}\u0000]{{1,{SEARCH_TERM_MAX_CHARS}}}"
QUERY_SEARCH: dict[str, Any] = {
    "pattern": rf"^[{_BLANK}]*(?:{_WORD}(?:[{_BLANK}]+{_WORD}){{0,{SEARCH_MAX_TERMS - 1}}})?"
    rf"[{_BLANK}]*$"
}
# Years 1000..9998: a bound a day past 9999-12-31, or before 0001-01-01 once its offset
# is applied, is out of Python's datetime range.
_YEAR = r"^(?:1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"
QUERY_DAY_OR_INSTANT: dict[str, Any] = {
    "one_of": [
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE, pattern=_YEAR),
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME, pattern=_YEAR),
    ]
}
