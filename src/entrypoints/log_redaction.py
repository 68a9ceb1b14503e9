"""Keep credentials that travel in query strings out of the logs.

WeChat's OAuth protocol sends the app secret (and the login code, and the access token)
as query parameters, and httpx logs every request's full URL at INFO. Parley keeps the
httpx logger at WARNING, but an operator's own logging configuration may lower it: this
filter masks those parameters in whatever the httpx loggers emit, whatever the level."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETERS = ("secret", "appsecret", "access_token", "refresh_token", "code", "key")
_SECRET_QUERY = re.compile(
    r"([?&](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&#\s\"']*", re.IGNORECASE
)


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1***", text)


class RedactQuerySecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_names: tuple[str, ...] = ("httpx", "httpcore")) -> None:
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())
