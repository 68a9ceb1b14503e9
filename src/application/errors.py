"""Failures of the chat model port. Adapters translate provider errors into these."""

from __future__ import annotations

import math

from domain.errors import DomainError
from domain.rate_limit import Decision


class ModelFailure(DomainError):
    """The model could not produce an answer. The user's message is kept regardless.

    ``retry_after``: seconds the provider asked to wait, when it said."""

    code = "provider_error"
    default_message = "The model provider returned an error."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(ModelFailure):
    code = "provider_error"
    default_message = "The model provider returned an error."


class ProviderRefusedRequest(ProviderError):
    """The provider refused the request as invalid (its HTTP 400): Parley's fault when
    Parley built it, the caller's when the caller wrote it (the OpenAI-compatible
    endpoint passes the caller's messages and options through). Its code stays
    ``provider_error``, as stored replies have always said."""

    code = "provider_error"
    default_message = "The model provider refused the request as invalid."


class ProviderAuthError(ModelFailure):
    code = "provider_auth"
    default_message = "The model provider rejected Parley's credentials."


class ProviderQuotaExceeded(ModelFailure):
    """A billing failure (credit or plan exhausted): retrying does not help."""

    code = "provider_quota"
    default_message = "The model provider's account has run out of quota or credit."


class ContentFiltered(ModelFailure):
    code = "content_filtered"
    default_message = "The model provider's safety system blocked this answer."


class EmptyReply(ModelFailure):
    code = "empty_reply"
    default_message = "The model finished without writing any text."


class ProviderUnavailable(ModelFailure):
    code = "provider_unavailable"
    default_message = "No model provider is available right now; try again later."


class ProviderTimeout(ModelFailure):
    code = "provider_timeout"
    default_message = "The model provider did not answer in time."


class OAuthNotConfigured(DomainError):
    code = "oauth_not_configured"
    default_message = "This login method is not configured on this server."


class OAuthStateInvalid(DomainError):
    code = "invalid_state"
    default_message = "The login state is missing, expired or was already used; start again."


class OAuthProviderError(DomainError):
    code = "oauth_provider_error"
    default_message = "The identity provider could not complete the login."


class RateLimited(DomainError):
    code = "throttled"
    default_message = "Request was throttled."

    def __init__(
        self, decision: Decision, message: str | None = None, *, limit: str = "requests"
    ) -> None:
        self.decision = decision
        self.limit = limit  # which of the throttle's limits: "requests" or "credentials"
        seconds = max(1, math.ceil(decision.retry_after))
        super().__init__(
            message or f"Request was throttled. Expected available in {seconds} seconds."
        )
