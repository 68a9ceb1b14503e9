"""What can go wrong talking to a provider, classified once for every wire format.

Adapters raise ``UpstreamFailure``; the router retries the retryable kinds and turns
the final one into a port-level ``ModelFailure``. Messages never carry API keys."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import msgspec

from application.errors import (
    ModelFailure,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRefusedRequest,
    ProviderTimeout,
    ProviderUnavailable,
)


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"  # billing: credit or plan exhausted; waiting does not help
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
    FailureKind.QUOTA: ProviderQuotaExceeded,
    FailureKind.UNAVAILABLE: ProviderUnavailable,
    FailureKind.CONNECT: ProviderUnavailable,
    FailureKind.TIMEOUT: ProviderTimeout,
    FailureKind.AUTH: ProviderAuthError,
    FailureKind.SERVER_ERROR: ProviderError,
    FailureKind.TRANSPORT: ProviderError,
    FailureKind.BAD_REQUEST: ProviderRefusedRequest,
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
        return PORT_ERROR[self.kind](
            f"Model provider {self.provider}: {self.detail}", retry_after=self.retry_after
        )


@dataclass(frozen=True)
class ErrorBody:
    """A provider's error body, whichever of the three shapes it has:
    OpenAI ``{"error": {"message", "type", "code", "param"}}``, Google
    ``{"error": {"code": 429, "message", "status", "details": [...]}}`` and Anthropic
    ``{"type": "error", "error": {"type", "message"}}``."""

    message: str = ""
    code: str = ""  # OpenAI code (else type), Google status, Anthropic type
    reasons: tuple[str, ...] = ()  # Google ErrorInfo reasons, e.g. API_KEY_INVALID
    quota_ids: tuple[str, ...] = ()  # Google QuotaFailure violations
    retry_delay: float | None = None  # Google RetryInfo: its wait is in the body

    @classmethod
    def parse(cls, text: str) -> ErrorBody:
        try:
            document = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return cls(message=" ".join(text.split())[:200])
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, str):  # some compatible servers (Ollama): {"error": "..."}
            return cls(message=error)
        if not isinstance(error, dict):
            return cls()
        return cls.of(error)

    @classmethod
    def of(cls, error: dict[str, Any]) -> ErrorBody:
        code = error.get("code") if isinstance(error.get("code"), str) else None
        code = code or error.get("status") or error.get("type") or ""
        reasons: list[str] = []
        quota_ids: list[str] = []
        retry_delay = None
        details = error.get("details")
        for detail in details if isinstance(details, list) else ():
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type", ""))
            if kind.endswith("ErrorInfo") and detail.get("reason"):
                reasons.append(str(detail["reason"]))
            elif kind.endswith("RetryInfo"):
                retry_delay = _duration(detail.get("retryDelay"))
            elif kind.endswith("QuotaFailure"):
                for violation in detail.get("violations") or ():
                    if isinstance(violation, dict) and violation.get("quotaId"):
                        quota_ids.append(str(violation["quotaId"]))
        return cls(
            message=str(error.get("message") or ""),
            code=str(code),
            reasons=tuple(reasons),
            quota_ids=tuple(quota_ids),
            retry_delay=retry_delay,
        )

    @property
    def is_billing(self) -> bool:
        if self.code == "insufficient_quota":
            return True
        if "credit balance is too low" in self.message:  # Anthropic, as a 400
            return True
        # Google: a per-day (or per-month) quota is spent; a per-minute one is a rate limit.
        return any("PerDay" in quota or "PerMonth" in quota for quota in self.quota_ids)


def from_status(provider: str, response: httpx.Response, body: str, secret: str) -> UpstreamFailure:
    status = response.status_code
    error = ErrorBody.parse(body)
    retry_after = _retry_after(response.headers, error)
    if error.is_billing:
        kind = FailureKind.QUOTA
    elif status == 429:
        kind = FailureKind.RATE_LIMITED
    elif status in (502, 503, 504, 529):  # 529: Anthropic's overloaded_error
        kind = FailureKind.UNAVAILABLE
    elif status >= 500:
        kind = FailureKind.SERVER_ERROR
    elif status in (401, 403) or "API_KEY_INVALID" in error.reasons:
        kind = FailureKind.AUTH  # Google answers a wrong key 400 API_KEY_INVALID
    else:
        kind = FailureKind.BAD_REQUEST
    return UpstreamFailure(
        kind,
        provider,
        _detail(f"HTTP {status}", error, secret),
        status=status,
        retry_after=retry_after,
    )


def from_stream_error(provider: str, error: Any, secret: str) -> UpstreamFailure:
    """An error event inside a 200 stream (OpenAI-compatible ``data: {"error": ...}``,
    Anthropic ``event: error``, Gemini ``{"error": ...}`` chunks)."""
    body = ErrorBody.of(error) if isinstance(error, dict) else ErrorBody(message=str(error))
    code = body.code.lower()
    if body.is_billing:
        kind = FailureKind.QUOTA
    elif "rate_limit" in code or code == "resource_exhausted":
        kind = FailureKind.RATE_LIMITED
    elif "overloaded" in code or code in ("unavailable", "service_unavailable"):
        kind = FailureKind.UNAVAILABLE
    elif code in ("server_error", "api_error", "internal", "internal_error", ""):
        kind = FailureKind.SERVER_ERROR
    else:
        kind = FailureKind.BAD_REQUEST
    return UpstreamFailure(
        kind,
        provider,
        _detail("error in the stream", error=body, secret=secret),
        retry_after=body.retry_delay,
    )


def _detail(prefix: str, error: ErrorBody, secret: str) -> str:
    """The provider's own words, so users and logs see why (keys never leave)."""
    detail = prefix
    if error.code:
        detail += f" {error.code}"
    if error.message:
        detail += f": {error.message}"
    return scrub(detail, secret)[:400]


def _retry_after(headers: httpx.Headers, error: ErrorBody) -> float | None:
    # OpenAI sends retry-after-ms beside Retry-After, more precise; Google sends neither
    # and puts its wait in the body.
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    seconds = parse_retry_after(headers.get("retry-after"))
    return seconds if seconds is not None else error.retry_delay


def _duration(value: Any) -> float | None:
    """A protobuf Duration as JSON: ``"37s"``, ``"1.5s"``."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


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


def normalised_finish(reason: str | None, table: dict[str, str]) -> str | None:
    if reason is None:
        return None
    return table.get(reason, reason.lower())


@dataclass(frozen=True, kw_only=True)
class UpstreamModel:
    """A model as its provider names it, and what it accepts.

    ``takes_temperature`` False: the model refuses (or ignores) any temperature but its
    default -- OpenAI's reasoning models (GPT-5 and later, o-series), Claude 4.7 and
    later, Gemini 3.6 and later, Kimi K2.6 and later -- so none is sent."""

    name: str
    takes_temperature: bool = True


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """What one provider's server accepts beyond its wire format."""

    temperature_max: float | None = None  # clamped to this (Moonshot and Anthropic: 1)
    max_tokens_field: str = "max_tokens"  # OpenAI and Kimi: max_completion_tokens
    # Added to non-streaming requests: DashScope's hybrid-thinking Qwen models refuse a
    # non-streaming call unless thinking is off.
    non_stream_extra: tuple[tuple[str, Any], ...] = ()

    def temperature(self, model: UpstreamModel, wanted: float) -> float | None:
        if not model.takes_temperature:
            return None
        return wanted if self.temperature_max is None else min(wanted, self.temperature_max)
