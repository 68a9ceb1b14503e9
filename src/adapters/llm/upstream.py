"""What can go wrong talking to a provider, classified once for every wire format.

Adapters raise ``UpstreamFailure``; the router retries the retryable kinds and turns
the final one into a port-level ``ModelFailure``. Messages never carry API keys."""

from __future__ import annotations

import email.utils
import time
from enum import StrEnum

import httpx

from application.errors import (
    ModelFailure,
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    SERVER_ERROR = "server_error"
    CONNECT = "connect"
    TRANSPORT = "transport"
    TIMEOUT = "timeout"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    MALFORMED = "malformed"


RETRYABLE = {
    FailureKind.RATE_LIMITED,
    FailureKind.UNAVAILABLE,
    FailureKind.SERVER_ERROR,
    FailureKind.CONNECT,
    FailureKind.TRANSPORT,
    FailureKind.TIMEOUT,
}

PORT_ERROR: dict[FailureKind, type[ModelFailure]] = {
    FailureKind.RATE_LIMITED: ProviderUnavailable,
    FailureKind.UNAVAILABLE: ProviderUnavailable,
    FailureKind.CONNECT: ProviderUnavailable,
    FailureKind.TIMEOUT: ProviderTimeout,
    FailureKind.AUTH: ProviderAuthError,
    FailureKind.SERVER_ERROR: ProviderError,
    FailureKind.TRANSPORT: ProviderError,
    FailureKind.BAD_REQUEST: ProviderError,
    FailureKind.MALFORMED: ProviderError,
}


class UpstreamFailure(Exception):
    def __init__(
        self,
        kind: FailureKind,
        provider: str,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = kind
        self.provider = provider
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{provider}: {detail}")

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def to_port_error(self) -> ModelFailure:
        return PORT_ERROR[self.kind](f"Model provider {self.provider}: {self.detail}")


def from_status(provider: str, response: httpx.Response, body: str, secret: str) -> UpstreamFailure:
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        kind = FailureKind.RATE_LIMITED
    elif status in (502, 503, 504):
        kind = FailureKind.UNAVAILABLE
    elif status >= 500:
        kind = FailureKind.SERVER_ERROR
    elif status in (401, 403):
        kind = FailureKind.AUTH
    else:
        kind = FailureKind.BAD_REQUEST
    detail = f"HTTP {status}"
    if kind is FailureKind.BAD_REQUEST and body:
        # The provider's reason (e.g. context too long) helps the user; keys never leave.
        detail += f": {scrub(body, secret)[:300]}"
    return UpstreamFailure(kind, provider, detail, status=status, retry_after=retry_after)


def from_transport(provider: str, error: httpx.TransportError) -> UpstreamFailure:
    if isinstance(error, httpx.ConnectTimeout | httpx.ConnectError):
        return UpstreamFailure(FailureKind.CONNECT, provider, "could not connect")
    if isinstance(error, httpx.TimeoutException):
        return UpstreamFailure(FailureKind.TIMEOUT, provider, "timed out")
    return UpstreamFailure(
        FailureKind.TRANSPORT, provider, f"connection failed ({type(error).__name__})"
    )


def malformed(provider: str, what: str) -> UpstreamFailure:
    return UpstreamFailure(FailureKind.MALFORMED, provider, f"malformed response: {what}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text
