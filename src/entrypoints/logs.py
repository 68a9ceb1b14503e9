"""Log lines as text for people or as JSON objects for collectors, each naming the
request it was written for."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from adapters.telemetry.request_context import current_request_id
from entrypoints import log_redaction
from entrypoints.http.observability import ACCESS_FIELDS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class WithRequestId(logging.Filter):
    """On the handlers: records from every logger (the providers', uvicorn's) pass them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            line["request_id"] = request_id
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(WithRequestId())
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.parley = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    # Configured again (the CLI, then each worker): replace our own handler. Leave a
    # handler someone else set up alone, as logging.basicConfig does.
    root.handlers = [h for h in root.handlers if not getattr(h, "parley", False)]
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic narrates every plugin it loads at INFO, and httpx logs every upstream request
    # at INFO (a measurable share of chat throughput); only their warnings help an operator.
    for chatty in ("alembic", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    log_redaction.install()
