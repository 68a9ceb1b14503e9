"""Parley's Prometheus metrics, one set per process (prometheus-client's default
registry; with several workers its multiprocess mode writes them to files that a scrape
of any worker sums). HTTP request metrics come from Litestar's Prometheus middleware
(``parley_requests_total`` and ``parley_request_duration_seconds``, by route template).

Import this module only when metrics are on: with several workers, prometheus-client
must be imported after ``parley serve`` has set up the directory the workers share.

Labels are bounded: model ids and provider names come from the operator's configuration,
outcomes and limits from fixed lists. No label ever holds user content or a user id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from application.ports import ModelCatalog, TokenUsage

# A ``_created`` series per labelled counter doubles a scrape for nothing a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Provider calls take from a second to minutes; the first token comes sooner.
_CALL_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

CHAT_TURNS = Counter(
    "parley_chat_turns_total",
    "Model calls (a conversation's turn or an OpenAI-compatible call) by how they ended: "
    "completed, failed, partial, blocked (content filter) or cancelled.",
    ["model", "provider", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "parley_provider_latency_seconds",
    "From asking the model to its last token (retries and fallbacks included).",
    ["provider", "model"],
    buckets=_CALL_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "parley_time_to_first_token_seconds",
    "Streamed calls: from asking the model to its first piece of answer.",
    ["provider", "model"],
    buckets=_FIRST_TOKEN_BUCKETS,
)
RETRIES = Counter(
    "parley_provider_retries_total",
    "Provider calls made again after a retryable failure (429, 5xx, timeout, transport).",
    ["provider", "model"],
)
FALLBACKS = Counter(
    "parley_model_fallbacks_total",
    "Calls passed on to the next model of a fallback chain after a model failed.",
    ["model", "to_model"],
)
COOLDOWNS = Counter(
    "parley_model_cooldowns_total",
    "Cool-downs started: a model skipped for a while after consecutive failures.",
    ["model"],
)
TOKENS = Counter(
    "parley_tokens_total",
    "Tokens the providers reported, by kind: prompt, completion, reasoning (reasoning "
    "tokens are part of completion tokens, as the providers bill them).",
    ["model", "kind"],
)
COST = Counter(
    "parley_cost_total",
    "What the calls cost at the configured prices (models without a price count nothing).",
    ["model", "currency"],
)
STREAMS_IN_FLIGHT = Gauge(
    "parley_streams_in_flight",
    "Streamed model calls being written now.",
    multiprocess_mode="livesum",
)
LIMIT_REFUSALS = Counter(
    "parley_limit_refusals_total",
    "Requests refused by a limit: rate_requests, rate_credentials, budget_daily, "
    "budget_monthly, model_not_allowed, active_conversations.",
    ["limit"],
)
DB_CONNECTIONS_IN_USE = Gauge(
    "parley_db_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_CONNECTIONS_WAITING = Gauge(
    "parley_db_connections_waiting",
    "Units of work waiting for a connection from the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_TIMEOUTS = Counter(
    "parley_db_pool_timeouts_total",
    "Requests answered 503 because no connection came free within db_pool_timeout.",
)
SQLITE_BUSY_RETRIES = Counter(
    "parley_sqlite_busy_retries_total",
    "SQLite statements tried again because another connection held the write lock.",
)


class ChatMetrics:
    """The chat model's calls, counted (``ObservedChatModel``'s ``CallMetrics``)."""

    def __init__(self, catalog: ModelCatalog, currency: str) -> None:
        self._catalog = catalog
        self._currency = currency

    def stream_started(self) -> None:
        STREAMS_IN_FLIGHT.inc()

    def stream_ended(self) -> None:
        STREAMS_IN_FLIGHT.dec()

    def first_token(self, provider: str, model: str, seconds: float) -> None:
        TIME_TO_FIRST_TOKEN.labels(provider, model).observe(seconds)

    def call_ended(
        self, provider: str, model: str, outcome: str, usage: TokenUsage | None, seconds: float
    ) -> None:
        CHAT_TURNS.labels(model, provider, outcome).inc()
        PROVIDER_LATENCY.labels(provider, model).observe(seconds)
        if usage is None:
            return
        TOKENS.labels(model, "prompt").inc(usage.prompt_tokens)
        TOKENS.labels(model, "completion").inc(usage.completion_tokens)
        TOKENS.labels(model, "reasoning").inc(usage.reasoning_tokens)
        info = self._catalog.get(model)
        if info is not None and info.price is not None:
            nanos = info.price.cost(usage.prompt_tokens, usage.completion_tokens)
            COST.labels(model, self._currency).inc(nanos / 1e9)


class RouteCounters:
    """The router's retries, fallbacks and cool-downs, counted (its ``RouteEvents``)."""

    def retried(self, provider: str, model: str) -> None:
        RETRIES.labels(provider, model).inc()

    def fell_back(self, model: str, to_model: str) -> None:
        FALLBACKS.labels(model, to_model).inc()

    def cooled_down(self, model: str) -> None:
        COOLDOWNS.labels(model).inc()
