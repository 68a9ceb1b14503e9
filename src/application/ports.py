"""The ports the use cases need, named for their role. Adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self

from application.pagination import Page, PageRequest
from domain.chat_settings import UserChatSettings
from domain.conversation import Conversation, Message
from domain.rate_limit import Decision, Rate
from domain.users import User

# ---- persistence -------------------------------------------------------------------------


class Users(Protocol):
    async def add(self, user: User) -> User:
        """Store a new user and return it with its id; a taken username is InvalidInput."""
        ...

    async def revoke_credentials(self, user_id: int, when: datetime) -> None:
        """Set credentials_valid_after: tokens and sessions issued earlier stop working."""
        ...

    async def get(self, user_id: int) -> User | None: ...

    async def get_with_login(self, user_id: int, family_id: str) -> tuple[User | None, bool]:
        """The user, and whether the login (refresh-token family) ``family_id`` was revoked,
        in one query: what every request with an access token reads."""
        ...

    async def by_username(self, username: str) -> User | None: ...


class Conversations(Protocol):
    async def add(self, conversation: Conversation) -> Conversation: ...

    async def get_owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        """The conversation if it exists and belongs to ``owner_id``; otherwise None."""
        ...

    async def owned_with_settings(
        self, conversation_id: int, owner_id: int
    ) -> tuple[Conversation, UserChatSettings | None] | None:
        """The owner's conversation and the owner's chat settings, in one query: what
        every chat turn reads first."""
        ...

    async def save(self, conversation: Conversation) -> None:
        """Store title, model, status and updated_at."""
        ...

    async def touch(self, conversation_id: int, when: datetime) -> None:
        """Move updated_at forward only, so a concurrent close is never undone."""
        ...

    async def count_active_locked(self, owner_id: int) -> int:
        """Count the owner's active conversations, serialising concurrent callers for
        the same owner until the transaction ends (the active limit depends on it)."""
        ...

    async def list_owned(self, owner_id: int, page: PageRequest) -> Page[Conversation]:
        """Newest first."""
        ...

    async def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        ...


class Messages(Protocol):
    async def add(self, message: Message) -> Message: ...

    async def list_page(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        """Oldest first."""
        ...

    async def list_for_owner(
        self, owner_id: int, conversation_id: int | None, page: PageRequest
    ) -> Page[Message]:
        """The owner's messages across conversations (or in one), oldest first."""
        ...

    async def all_of(self, conversation_id: int) -> list[Message]:
        """Oldest first."""
        ...

    async def latest(self, conversation_id: int, limit: int) -> list[Message]:
        """The newest ``limit`` messages, returned oldest first: one bounded query."""
        ...


class ChatSettingsStore(Protocol):
    async def for_user(self, user_id: int) -> UserChatSettings | None: ...

    async def add(self, settings: UserChatSettings) -> UserChatSettings:
        """Store the user's first settings; if a concurrent request stored some first,
        return those instead."""
        ...

    async def save(self, settings: UserChatSettings) -> None: ...


@dataclass(frozen=True)
class RefreshTokenRecord:
    jti: str
    user_id: int
    family_id: str
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class RefreshTokens(Protocol):
    async def add(self, record: RefreshTokenRecord) -> None: ...

    async def get(self, jti: str) -> RefreshTokenRecord | None: ...

    async def mark_used(self, jti: str, when: datetime) -> bool:
        """Mark an unused token used; False if it was already used (a concurrent refresh)."""
        ...

    async def revoke_family(self, family_id: str, when: datetime) -> None: ...

    async def revoke_all_of(self, user_id: int, when: datetime) -> None: ...


class ApiTokens(Protocol):
    async def add(self, user_id: int, token_digest: str, created_at: datetime) -> None: ...

    async def user_id_for(self, token_digest: str) -> int | None: ...

    async def revoke(self, token_digest: str) -> None: ...

    async def revoke_all(self, user_id: int) -> None: ...


class ExternalIdentities(Protocol):
    async def user_id_for(self, provider: str, subject: str) -> int | None: ...

    async def link(self, user_id: int, provider: str, subject: str, when: datetime) -> None:
        """A subject already linked (to anyone) is InvalidInput."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Rolls back on exit unless ``commit()`` was called.

    Can be entered again after it exits, starting a new transaction."""

    @property
    def users(self) -> Users: ...

    @property
    def conversations(self) -> Conversations: ...

    @property
    def messages(self) -> Messages: ...

    @property
    def chat_settings(self) -> ChatSettingsStore: ...

    @property
    def refresh_tokens(self) -> RefreshTokens: ...

    @property
    def api_tokens(self) -> ApiTokens: ...

    @property
    def identities(self) -> ExternalIdentities: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class DatabaseProbe(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ...


# ---- the model -----------------------------------------------------------------------------

ChatRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True, kw_only=True)
class ChatTurn:
    """``image_url`` is always a ``data:`` URI: images are fetched once, when sent."""

    role: ChatRole
    content: str
    image_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatTurn]
    temperature: float
    max_tokens: int


@dataclass(frozen=True, kw_only=True)
class TokenUsage:
    """What the provider bills. ``completion_tokens`` includes ``reasoning_tokens``."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Finish reasons in one vocabulary for every wire format (OpenAI's, which clients know):
# "stop", "length", "content_filter" (a safety system withheld the answer), "refusal"
# (the model declined, in words: the text is its refusal); others pass through lower-cased.
CONTENT_FILTER = "content_filter"


@dataclass(frozen=True, kw_only=True)
class ChatCompletion:
    text: str
    model: str
    provider: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str = "stop"
    reasoning: str = ""


@dataclass(frozen=True, kw_only=True)
class ChatDelta:
    """A piece of a streamed answer; the last one carries usage and finish reason.

    ``reasoning`` is the model's thinking, never part of the answer's text."""

    text: str = ""
    reasoning: str = ""
    usage: TokenUsage | None = None
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None


class ChatModel(Protocol):
    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """Raise a ``ModelFailure`` subclass when no answer can be had."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]: ...


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    id: str
    name: str
    provider: str
    supports_images: bool = False
    context_window: int = 8192
    # The image types the model's provider takes (Gemini takes no GIF, Ollama no GIF).
    image_types: frozenset[str] = frozenset({"image/png", "image/jpeg", "image/webp"})

    def takes_image(self, mime_type: str) -> bool:
        return self.supports_images and mime_type in self.image_types


@dataclass(frozen=True, kw_only=True)
class FetchedImage:
    mime_type: str
    data_uri: str


class ImageInspector(Protocol):
    async def fetch(self, image_url: str) -> FetchedImage:
        """The image, fetched once: raise InvalidInput on "image_url" unless it is an
        acceptable image (an http(s) URL of a public host answering with an image within
        the limits, or a data: URI of one)."""
        ...


class ModelCatalog(Protocol):
    @property
    def default_model(self) -> str: ...

    def get(self, model_id: str) -> ModelInfo | None:
        """The model if it is configured and usable now."""
        ...

    def available(self) -> list[ModelInfo]: ...


# ---- identity -----------------------------------------------------------------------------


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def burn_time(self, password: str) -> None:
        """Spend what a verify costs, so an unknown username answers like a wrong password."""
        ...


@dataclass(frozen=True, kw_only=True)
class IssuedTokens:
    access: str
    refresh: str
    refresh_jti: str
    refresh_expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class AccessClaims:
    user_id: int
    issued_at: datetime
    family_id: str | None = None  # the login it came from (None: tokens from before 0.x)


@dataclass(frozen=True, kw_only=True)
class RefreshClaims:
    user_id: int
    jti: str
    family_id: str


class TokenIssuer(Protocol):
    def issue(self, user_id: int, family_id: str) -> IssuedTokens: ...

    def access_claims(self, token: str) -> AccessClaims:
        """Who an access token was issued to, and when; AuthenticationFailed if invalid."""
        ...

    def refresh_claims(self, token: str) -> RefreshClaims:
        """AuthenticationFailed when the token is not a valid, unexpired refresh token."""
        ...

    def new_family_id(self) -> str: ...


class ApiTokenCodec(Protocol):
    def new_token(self) -> str: ...

    def digest(self, token: str) -> str:
        """What is stored: tokens never are."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExternalAccount:
    """An identity vouched for by an outside provider (WeChat: unionid, else openid)."""

    provider: str
    subject: str
    display_name: str = ""


class OAuthIdentityProvider(Protocol):
    name: str

    @property
    def configured(self) -> bool: ...

    def authorization_url(self, state: str) -> str: ...

    async def identify(self, code: str) -> ExternalAccount:
        """Exchange an authorization code; InvalidInput for a bad code, a ModelFailure-like
        OAuthProviderError when the provider fails."""
        ...


@dataclass(frozen=True, kw_only=True)
class PendingLogin:
    binding_digest: str
    link_user_id: int | None = None


class OAuthStates(Protocol):
    async def put(self, state: str, pending: PendingLogin, ttl_seconds: int) -> None: ...

    async def take(self, state: str) -> PendingLogin | None:
        """Remove and return; None if unknown, expired or already taken (single use)."""
        ...


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    status_code: int
    body: bytes


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    fingerprint: str
    response: StoredResponse | None  # None while the first request is running


@dataclass(frozen=True, kw_only=True)
class KeyHold:
    """A request's hold on its key: ``holder`` is a random id of that one request."""

    user_id: int
    key: str
    holder: str


class IdempotencyStore(Protocol):
    """Keys held by leases: a request holds its key until ``lease_until`` and renews the
    lease while it runs, so a key whose holder died (a crashed process) comes free."""

    async def claim(
        self,
        hold: KeyHold,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
        expired_before: datetime,
    ) -> IdempotencyRecord | None:
        """Reserve the key for ``hold`` (None) -- also when it is held for the same
        fingerprint with no answer and a lease that ended before ``now`` -- or return the
        record of whoever holds it. A record created before ``expired_before`` is
        forgotten first."""
        ...

    async def renew(self, hold: KeyHold, lease_until: datetime) -> bool:
        """Extend the lease; False if ``hold`` no longer holds the key."""
        ...

    async def complete(self, hold: KeyHold, response: StoredResponse) -> None:
        """Keep the answer, if ``hold`` still holds the key."""
        ...

    async def release(self, hold: KeyHold) -> None:
        """Forget the key, if ``hold`` still holds it."""
        ...


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request for ``key`` against ``rate`` and say whether it may pass."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
