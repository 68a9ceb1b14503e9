"""The composition root: the only place that knows every adapter."""

from __future__ import annotations

from datetime import timedelta
from operator import attrgetter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from dependency_injector import containers, providers
from redis.asyncio import Redis

from adapters.auth.api_tokens import Sha256ApiTokenCodec
from adapters.auth.jwt_tokens import JwtTokenIssuer
from adapters.auth.passwords import Argon2PasswordHasher
from adapters.clock import SystemClock
from adapters.limits.rate_limiters import MemoryRateLimiter, RedisRateLimiter
from adapters.llm.routing import RetryPolicy, RouteEvents
from adapters.llm.setup import LlmConfig, build_llm
from adapters.oauth.states import MemoryOAuthStates, RedisOAuthStates
from adapters.oauth.wechat import WeChatLogin
from adapters.persistence.admin_queries import SqlAdminUnitOfWork
from adapters.persistence.database import (
    SQLITE_BUSY_TIMEOUT_MS,
    RedisProbe,
    SqlDatabaseProbe,
    create_engine,
)
from adapters.persistence.idempotency import SqlIdempotencyStore
from adapters.persistence.interrupted_turns import SqlUnansweredTurns
from adapters.persistence.provider_calls import SqlRecentModelCalls
from adapters.persistence.unit_of_work import SqlUnitOfWork
from adapters.streams.replies import MemoryReplyChannel, RedisReplyChannel
from adapters.telemetry.chat_model import CallMetrics, ObservedChatModel
from application import (
    accounts,
    admin,
    authentication,
    branches,
    chat,
    chat_settings,
    conversations,
    health,
    oauth,
    throttling,
)
from application.budgets import BudgetRules, GetOwnBudget, HeldReservations, ListModels, Metering
from application.idempotency import IdempotencyWait, IdempotentRequests
from application.interrupted_turns import MarkInterruptedTurns, TurnBound
from application.ports import ModelCatalog
from application.transfer import ExportConversations, ImportConversations
from domain.budgets import Budget, Limit, Limits, ModelAccess, parse_amount, parse_tokens
from domain.errors import InvalidInput
from domain.quota import QuotaPolicy
from domain.rate_limit import Rate


def redis_client(url: str) -> Redis | None:
    return Redis.from_url(url) if url else None


def redis_probe(redis: Redis | None) -> RedisProbe | None:
    return None if redis is None else RedisProbe(redis)


def rate_limiter_for(redis: Redis | None) -> MemoryRateLimiter | RedisRateLimiter:
    return MemoryRateLimiter() if redis is None else RedisRateLimiter(redis)


def turn_bound(deadline: float, pool_timeout: float, statement_timeout_ms: int) -> TurnBound:
    """From a user's message stored to its reply stored: the model's deadline, then a wait
    for a connection and one write, bounded by the pool and statement timeouts (SQLite's
    by its busy timeout, whichever is longer)."""
    busy = SQLITE_BUSY_TIMEOUT_MS / 1000
    return TurnBound(
        seconds=deadline + max(pool_timeout, busy) + max(statement_timeout_ms / 1000, busy)
    )


def reply_channel_for(redis: Redis | None) -> MemoryReplyChannel | RedisReplyChannel:
    return MemoryReplyChannel() if redis is None else RedisReplyChannel(redis)


def reply_lease(seconds: float) -> chat.ReplyLease:
    return chat.ReplyLease(seconds=seconds, renew_seconds=seconds / 3)


def reply_wait(turn: TurnBound, lease: chat.ReplyLease) -> chat.ReplyWait:
    """A reply written elsewhere ends within a turn, or is marked once its lease ends."""
    return chat.ReplyWait(seconds=turn.seconds + lease.seconds)


def budget_rules(
    daily_tokens: str,
    monthly_tokens: str,
    daily_cost: str,
    monthly_cost: str,
    allowed_models: list[str],
    timezone: str,
    currency: str,
    lease: chat.ReplyLease,
    turn: TurnBound,
) -> BudgetRules:
    """The operator's default budget and model list, in the operator's zone. A budget's
    reservation is leased as a streamed reply is (the same renewal loop keeps both)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput({"budget_timezone": [f"{timezone!r} is not a time zone."]}) from None
    budget = Budget(
        daily=Limit(
            tokens=parse_tokens("budget_daily_tokens", daily_tokens),
            cost_nanos=parse_amount("budget_daily_cost", daily_cost),
        ),
        monthly=Limit(
            tokens=parse_tokens("budget_monthly_tokens", monthly_tokens),
            cost_nanos=parse_amount("budget_monthly_cost", monthly_cost),
        ),
    )
    access = ModelAccess(frozenset(allowed_models) if allowed_models else None)
    return BudgetRules(
        default=Limits(budget=budget, access=access),
        zone=zone,
        currency=currency,
        lease_seconds=lease.seconds,
        # A stream may outlast a turn's bound (its deadline covers the first token): an
        # hour is how long a call's reservation is kept alive at most.
        longest_call_seconds=max(turn.seconds, 3600.0),
    )


def route_events(metrics_on: bool) -> RouteEvents | None:
    if not metrics_on:
        return None
    from adapters.telemetry.metrics import RouteCounters  # only when on: see its module

    return RouteCounters()


def chat_metrics(metrics_on: bool, catalog: ModelCatalog, currency: str) -> CallMetrics | None:
    if not metrics_on:
        return None
    from adapters.telemetry.metrics import ChatMetrics

    return ChatMetrics(catalog, currency)


def oauth_state_store(redis: Redis | None) -> MemoryOAuthStates | RedisOAuthStates:
    return MemoryOAuthStates() if redis is None else RedisOAuthStates(redis)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    engine = providers.Singleton(
        create_engine,
        config.database_url,
        pool_size=config.db_pool_size,
        max_overflow=config.db_max_overflow,
        pool_timeout=config.db_pool_timeout,
        statement_timeout_ms=config.db_statement_timeout_ms,
    )
    clock = providers.Singleton(SystemClock)
    uow = providers.Factory(SqlUnitOfWork, engine)
    database_probe = providers.Singleton(SqlDatabaseProbe, engine)

    quota = providers.Singleton(
        QuotaPolicy,
        max_active_conversations=config.max_active_conversations,
        max_message_chars=config.max_message_chars,
    )
    history_budget = providers.Singleton(
        chat.HistoryBudget,
        max_messages=config.history_max_messages,
        max_chars=config.history_max_chars,
        system_prompt=config.system_prompt,
    )
    settings_defaults = providers.Singleton(
        chat_settings.SettingsDefaults,
        temperature=config.default_temperature,
        max_tokens=config.default_max_tokens,
    )

    llm = providers.Singleton(
        build_llm,
        providers.Factory(
            LlmConfig,
            providers=config.providers,
            models=config.models,
            remove_models=config.remove_models,
            fallbacks=config.fallbacks,
            keep_echo=config.keep_echo,
            default_model=config.default_model,
            connect_timeout=config.provider_connect_timeout,
            read_timeout=config.provider_read_timeout,
            retry=providers.Factory(
                RetryPolicy,
                max_attempts=config.provider_max_attempts,
                backoff_initial=config.provider_backoff_initial,
                backoff_max=config.provider_backoff_max,
                retry_after_max=config.provider_retry_after_max,
                deadline=config.provider_deadline,
            ),
            cooldown_failures=config.provider_cooldown_failures,
            cooldown_seconds=config.provider_cooldown_seconds,
            allow_private_image_urls=config.allow_private_image_urls,
            image_max_bytes=config.image_max_bytes,
            route_events=providers.Callable(route_events, config.metrics_enabled),
        ),
    )
    catalog = providers.Singleton(attrgetter("catalog"), llm)
    chat_model = providers.Singleton(
        ObservedChatModel,
        providers.Singleton(attrgetter("chat_model"), llm),
        catalog,
        providers.Singleton(chat_metrics, config.metrics_enabled, catalog, config.currency),
    )
    images = providers.Singleton(attrgetter("images"), llm)

    turn_bound = providers.Singleton(
        turn_bound,
        config.provider_deadline,
        config.db_pool_timeout,
        config.db_statement_timeout_ms,
    )
    reply_lease = providers.Singleton(reply_lease, config.reply_lease_seconds)
    # Budgets and model access: every model call is metered through these.
    budget_rules = providers.Singleton(
        budget_rules,
        config.budget_daily_tokens,
        config.budget_monthly_tokens,
        config.budget_daily_cost,
        config.budget_monthly_cost,
        config.allowed_models,
        config.budget_timezone,
        config.currency,
        reply_lease,
        turn_bound,
    )
    held_reservations = providers.Singleton(HeldReservations, rules=budget_rules)
    metering = providers.Singleton(
        Metering, rules=budget_rules, catalog=catalog, clock=clock, held=held_reservations
    )
    get_own_budget = providers.Factory(GetOwnBudget, uow=uow, rules=budget_rules, clock=clock)
    list_models = providers.Factory(ListModels, uow=uow, catalog=catalog, rules=budget_rules)

    password_hasher = providers.Singleton(Argon2PasswordHasher)
    api_token_codec = providers.Singleton(Sha256ApiTokenCodec)
    token_issuer = providers.Singleton(
        JwtTokenIssuer,
        secret_key=config.secret_key,
        access_ttl=providers.Factory(timedelta, minutes=config.access_token_minutes),
        refresh_ttl=providers.Factory(timedelta, days=config.refresh_token_days),
        clock=clock,
    )

    register = providers.Factory(
        accounts.RegisterUser, uow=uow, hasher=password_hasher, tokens=token_issuer, clock=clock
    )
    login = providers.Factory(accounts.LogIn, uow=uow, hasher=password_hasher, tokens=token_issuer)
    refresh_session = providers.Factory(
        accounts.RefreshAccessToken, uow=uow, tokens=token_issuer, clock=clock
    )
    issue_api_token = providers.Factory(
        accounts.IssueApiToken,
        uow=uow,
        hasher=password_hasher,
        codec=api_token_codec,
        clock=clock,
    )
    revoke_api_token = providers.Factory(accounts.RevokeApiToken, uow=uow, codec=api_token_codec)
    authenticate = providers.Factory(
        authentication.Authenticate, uow=uow, tokens=token_issuer, codec=api_token_codec
    )

    start_conversation = providers.Factory(
        conversations.StartConversation, uow=uow, policy=quota, clock=clock, catalog=catalog
    )
    list_conversations = providers.Factory(conversations.ListConversations, uow=uow)
    get_conversation = providers.Factory(conversations.GetConversation, uow=uow)
    close_conversation = providers.Factory(conversations.CloseConversation, uow=uow, clock=clock)
    reopen_conversation = providers.Factory(
        conversations.ReopenConversation, uow=uow, policy=quota, clock=clock
    )
    list_messages = providers.Factory(conversations.ListMessages, uow=uow)
    archive_conversation = providers.Factory(
        conversations.ArchiveConversation, uow=uow, clock=clock
    )
    unarchive_conversation = providers.Factory(
        conversations.UnarchiveConversation, uow=uow, policy=quota, clock=clock
    )
    pin_conversation = providers.Factory(conversations.PinConversation, uow=uow, clock=clock)
    unpin_conversation = providers.Factory(conversations.UnpinConversation, uow=uow, clock=clock)
    switch_branch = providers.Factory(branches.SwitchBranch, uow=uow)
    get_conversation_tree = providers.Factory(branches.GetConversationTree, uow=uow)
    # Chat: the steps a turn shares, then the two ways of answering it.
    turn_preparation = providers.Factory(
        chat.TurnPreparation,
        uow=uow,
        catalog=catalog,
        policy=quota,
        clock=clock,
        budget=history_budget,
        defaults=settings_defaults,
        images=images,
        metering=metering,
    )
    turn_recorder = providers.Factory(chat.TurnRecorder, uow=uow, clock=clock, metering=metering)
    send_message = providers.Factory(
        chat.SendMessage, prepare=turn_preparation, record=turn_recorder, model=chat_model
    )

    # OpenAI's Chat Completions: calls no conversation keeps, each recorded for usage.
    completion_preparation = providers.Factory(
        chat.CompletionPreparation,
        uow=uow,
        catalog=catalog,
        policy=quota,
        defaults=settings_defaults,
        images=images,
        metering=metering,
    )
    call_recorder = providers.Factory(
        chat.CallRecorder, uow=uow, clock=clock, catalog=catalog, metering=metering
    )
    complete_chat = providers.Factory(
        chat.CompleteChat, prepare=completion_preparation, record=call_recorder, model=chat_model
    )
    stream_chat = providers.Factory(
        chat.StreamChat, prepare=completion_preparation, record=call_recorder, model=chat_model
    )

    get_chat_settings = providers.Factory(
        chat_settings.GetChatSettings, uow=uow, catalog=catalog, defaults=settings_defaults
    )
    update_chat_settings = providers.Factory(
        chat_settings.UpdateChatSettings, uow=uow, catalog=catalog, defaults=settings_defaults
    )

    update_conversation = providers.Factory(
        conversations.UpdateConversation, uow=uow, policy=quota, clock=clock, catalog=catalog
    )
    delete_conversation = providers.Factory(conversations.DeleteConversation, uow=uow)
    list_user_messages = providers.Factory(conversations.ListUserMessages, uow=uow)
    export_conversations = providers.Factory(ExportConversations, uow=uow, clock=clock)
    import_conversations = providers.Factory(ImportConversations, uow=uow, catalog=catalog)
    verify_password = providers.Factory(accounts.VerifyPassword, uow=uow, hasher=password_hasher)
    logout_everywhere = providers.Factory(accounts.LogOutEverywhere, uow=uow, clock=clock)

    admin_uow = providers.Factory(SqlAdminUnitOfWork, engine)
    list_all_conversations = providers.Factory(admin.ListAllConversations, uow=admin_uow)
    get_any_conversation = providers.Factory(admin.GetAnyConversation, uow=admin_uow, clock=clock)
    close_any_conversation = providers.Factory(
        admin.CloseAnyConversation, uow=admin_uow, clock=clock
    )
    reopen_any_conversation = providers.Factory(
        admin.ReopenAnyConversation, uow=admin_uow, policy=quota, clock=clock
    )
    get_conversation_stats = providers.Factory(admin.GetConversationStats, uow=admin_uow)
    list_users = providers.Factory(admin.ListUsers, uow=admin_uow, rules=budget_rules, clock=clock)
    deactivate_user = providers.Factory(admin.DeactivateUser, uow=admin_uow, clock=clock)
    reactivate_user = providers.Factory(admin.ReactivateUser, uow=admin_uow, clock=clock)
    report_usage = providers.Factory(admin.ReportUsage, uow=admin_uow)
    report_own_usage = providers.Factory(admin.ReportOwnUsage, uow=admin_uow)
    list_audit_log = providers.Factory(admin.ListAuditLog, uow=admin_uow)
    get_user_budget = providers.Factory(
        admin.GetUserBudget, uow=admin_uow, rules=budget_rules, clock=clock
    )
    set_user_budget = providers.Factory(
        admin.SetUserBudget, uow=admin_uow, rules=budget_rules, clock=clock
    )
    get_user_models = providers.Factory(admin.GetUserModels, uow=admin_uow, rules=budget_rules)
    set_user_models = providers.Factory(
        admin.SetUserModels, uow=admin_uow, rules=budget_rules, catalog=catalog, clock=clock
    )
    get_provider_health = providers.Factory(
        admin.GetProviderHealth,
        calls=providers.Singleton(SqlRecentModelCalls, engine),
        cooldowns=providers.Singleton(attrgetter("cooldowns"), llm),
        catalog=catalog,
        clock=clock,
        secrets=providers.Singleton(attrgetter("api_keys"), llm),
    )

    idempotent_requests = providers.Singleton(
        IdempotentRequests,
        store=providers.Singleton(SqlIdempotencyStore, engine),
        clock=clock,
        wait=providers.Factory(IdempotencyWait),
    )
    mark_interrupted_turns = providers.Factory(
        MarkInterruptedTurns,
        turns=providers.Singleton(SqlUnansweredTurns, engine),
        clock=clock,
        bound=turn_bound,
    )
    redis = providers.Singleton(redis_client, config.redis_url)

    generations = providers.Singleton(chat.Generations, uow=uow, clock=clock, lease=reply_lease)
    reply_channel = providers.Singleton(reply_channel_for, redis)
    waiting_for_replies = providers.Singleton(reply_wait, turn_bound, reply_lease)
    stream_message = providers.Factory(
        chat.StreamMessage,
        prepare=turn_preparation,
        record=turn_recorder,
        model=chat_model,
        channel=reply_channel,
        generations=generations,
    )
    follow_reply = providers.Factory(
        chat.FollowReply,
        uow=uow,
        channel=reply_channel,
        generations=generations,
        wait=waiting_for_replies,
    )
    # A cancel answers within seconds: with the reply stopped, or as it stands if its
    # writer is out of reach (another worker, no Redis).
    cancel_reply = providers.Factory(
        chat.CancelReply,
        uow=uow,
        channel=reply_channel,
        generations=generations,
        wait=providers.Singleton(chat.ReplyWait, seconds=10.0),
    )
    mark_interrupted_replies = providers.Factory(chat.MarkInterruptedReplies, uow=uow, clock=clock)
    check_health = providers.Factory(
        health.CheckHealth, database=database_probe, redis=providers.Callable(redis_probe, redis)
    )
    rate_limiter = providers.Singleton(rate_limiter_for, redis)
    throttle = providers.Singleton(
        throttling.Throttle,
        limiter=rate_limiter,
        limits=providers.Factory(
            throttling.RateLimits,
            per_client=providers.Factory(Rate.parse, config.rate_limit),
            credentials=providers.Factory(Rate.parse, config.auth_rate_limit),
        ),
    )
    oauth_states = providers.Singleton(oauth_state_store, redis)
    wechat = providers.Singleton(
        WeChatLogin,
        app_id=config.wechat_app_id,
        app_secret=config.wechat_app_secret,
        redirect_uri=config.wechat_redirect_uri,
        open_base_url=config.wechat_open_base_url,
        api_base_url=config.wechat_api_base_url,
        http=providers.Singleton(httpx.AsyncClient, timeout=10.0),
    )
    begin_wechat_login = providers.Factory(
        oauth.BeginOAuthLogin, provider=wechat, states=oauth_states
    )
    complete_wechat_login = providers.Factory(
        oauth.CompleteOAuthLogin,
        provider=wechat,
        states=oauth_states,
        uow=uow,
        tokens=token_issuer,
        clock=clock,
    )
