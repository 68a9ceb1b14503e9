"""``/api/admin/...`` (the DRF-style dialect, admin side): monitoring for staff only.

Anonymous callers get 401 and non-staff users 403 on every endpoint, through the
``staff`` dependency (the use cases check it again)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from application.admin import (
    AdminConversationRef,
    AdminUserRef,
    CloseAnyConversation,
    DeactivateUser,
    GetAnyConversation,
    GetConversationStats,
    ListAllConversations,
    ListAllConversationsRequest,
    ListAuditLog,
    ListAuditLogRequest,
    ListUsers,
    ListUsersRequest,
    ReactivateUser,
    ReopenAnyConversation,
    ReportUsage,
    ReportUsageRequest,
)
from application.budgets import BudgetRules
from application.pagination import PageRequest
from domain.monitoring import SEARCH_MAX_TERMS, SEARCH_TERM_MAX_CHARS, require_staff
from domain.users import User
from entrypoints.http.api.admin_filters import (
    PeriodEnd,
    PeriodStart,
    grouping,
    period,
    status_filter,
    text_filter,
)
from entrypoints.http.api.admin_schemas import (
    AdminUserOut,
    AuditEntryOut,
    ConversationStatsOut,
    UsageOut,
    admin_user_out,
    audit_entry_out,
    owned_conversation_out,
    stats_out,
    usage_out,
)
from entrypoints.http.api.schemas import ConversationOut
from entrypoints.http.pagination import PAGINATION_HEADERS, paged
from entrypoints.http.schema_docs import (
    QUERY_GROUP_BY,
    QUERY_SEARCH,
    QUERY_STATUS,
    QUERY_TEXT,
)

CAPPED_HEADER = "X-Total-Count-Capped"


async def staff_user(user: NamedDependency[User]) -> User:
    """The authenticated user (401 otherwise), if staff (403 otherwise)."""
    require_staff(user)
    return user


STAFF = {"staff": Provide(staff_user)}


class AdminConversationsController(Controller):
    path = "/admin/conversations"
    tags = ["admin (/api)"]
    dependencies = STAFF

    @get(
        "/",
        operation_id="api_admin_list_conversations",
        response_headers=[
            *PAGINATION_HEADERS,
            ResponseHeader(
                name=CAPPED_HEADER,
                description="`true` when a search stopped counting: X-Total-Count is then "
                "a lower bound (there are at least that many).",
                documentation_only=True,
            ),
        ],
    )
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_all_conversations: NamedDependency[ListAllConversations],
        owner: Annotated[
            str | None,
            QueryParameter(
                name="user", description="Owner's username (exact).", schema_extra=QUERY_TEXT
            ),
        ] = None,
        status: Annotated[
            str | None,
            QueryParameter(description="`active` or `closed`.", schema_extra=QUERY_STATUS),
        ] = None,
        search: Annotated[
            str | None,
            QueryParameter(
                description="Words to find in the title or any message (all of them): "
                f"at most {SEARCH_MAX_TERMS} words of at most {SEARCH_TERM_MAX_CHARS} characters.",
                schema_extra=QUERY_SEARCH,
            ),
        ] = None,
    ) -> Response[list[ConversationOut]]:
        """Every user's conversations, newest first; filters combine.

        `search` is case-insensitive and matches inside words, so Chinese text without
        spaces is found. A search counts at most 200 matches (or just past the page asked
        for); beyond that X-Total-Count is a lower bound and X-Total-Count-Capped is true."""
        result = await list_all_conversations(
            ListAllConversationsRequest(
                actor=staff,
                username=text_filter(owner, "user"),
                status=status_filter(status),
                search=text_filter(search, "search"),
            ),
            page,
        )
        response = paged(request, result, [owned_conversation_out(c) for c in result.items])
        if not result.total_is_exact:
            response.headers[CAPPED_HEADER] = "true"
        return response

    @get("/{conversation_id:int}/", operation_id="api_admin_get_conversation")
    async def get_conversation(
        self,
        conversation_id: FromPath[int],
        staff: NamedDependency[User],
        get_any_conversation: NamedDependency[GetAnyConversation],
    ) -> ConversationOut:
        """Any user's conversation with all its messages, oldest first. Audited."""
        detail = await get_any_conversation(
            AdminConversationRef(actor=staff, conversation_id=conversation_id)
        )
        return owned_conversation_out(detail.conversation, detail.messages)

    @post(
        "/{conversation_id:int}/close/",
        operation_id="api_admin_close_conversation",
        status_code=200,
    )
    async def close_conversation(
        self,
        conversation_id: FromPath[int],
        staff: NamedDependency[User],
        close_any_conversation: NamedDependency[CloseAnyConversation],
    ) -> ConversationOut:
        """Close any user's conversation. Idempotent; audited."""
        closed = await close_any_conversation(
            AdminConversationRef(actor=staff, conversation_id=conversation_id)
        )
        return owned_conversation_out(closed)

    @post(
        "/{conversation_id:int}/reopen/",
        operation_id="api_admin_reopen_conversation",
        status_code=200,
    )
    async def reopen_conversation(
        self,
        conversation_id: FromPath[int],
        staff: NamedDependency[User],
        reopen_any_conversation: NamedDependency[ReopenAnyConversation],
    ) -> ConversationOut:
        """Reopen any user's conversation, within the owner's active-conversation limit
        (409 beyond it). Idempotent; audited."""
        reopened = await reopen_any_conversation(
            AdminConversationRef(actor=staff, conversation_id=conversation_id)
        )
        return owned_conversation_out(reopened)

    @get("/{conversation_id:int}/stats/", operation_id="api_admin_conversation_stats")
    async def conversation_stats(
        self,
        conversation_id: FromPath[int],
        staff: NamedDependency[User],
        get_conversation_stats: NamedDependency[GetConversationStats],
    ) -> ConversationStatsOut:
        """Message counts, first and last message times and the minutes between them.
        An empty conversation gives zeros and nulls."""
        stats = await get_conversation_stats(
            AdminConversationRef(actor=staff, conversation_id=conversation_id)
        )
        return stats_out(stats)


class AdminUsersController(Controller):
    path = "/admin/users"
    tags = ["admin (/api)"]
    dependencies = STAFF

    @get("/", operation_id="api_admin_list_users", response_headers=PAGINATION_HEADERS)
    async def list_users(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_users: NamedDependency[ListUsers],
        username: Annotated[
            str | None, QueryParameter(description="Exact username.", schema_extra=QUERY_TEXT)
        ] = None,
    ) -> Response[list[AdminUserOut]]:
        """Every account, newest first, with its conversation and message counts."""
        result = await list_users(
            ListUsersRequest(actor=staff, username=text_filter(username, "username")), page
        )
        return paged(request, result, [admin_user_out(u) for u in result.items])

    @post("/{user_id:int}/deactivate/", operation_id="api_admin_deactivate_user", status_code=200)
    async def deactivate_user(
        self,
        user_id: FromPath[int],
        staff: NamedDependency[User],
        deactivate_user: NamedDependency[DeactivateUser],
    ) -> AdminUserOut:
        """Deactivate an account: its tokens and sessions stop working at once and its
        refresh and API tokens are revoked. Not your own (403). Audited."""
        return admin_user_out(await deactivate_user(AdminUserRef(actor=staff, user_id=user_id)))

    @post("/{user_id:int}/reactivate/", operation_id="api_admin_reactivate_user", status_code=200)
    async def reactivate_user(
        self,
        user_id: FromPath[int],
        staff: NamedDependency[User],
        reactivate_user: NamedDependency[ReactivateUser],
    ) -> AdminUserOut:
        """Let a deactivated account log in again (old tokens stay revoked). Audited."""
        return admin_user_out(await reactivate_user(AdminUserRef(actor=staff, user_id=user_id)))


class AdminMonitoringController(Controller):
    path = "/admin"
    tags = ["admin (/api)"]
    dependencies = STAFF

    @get("/usage/", operation_id="api_admin_usage", response_headers=PAGINATION_HEADERS)
    async def usage(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[User],
        page: NamedDependency[PageRequest],
        report_usage: NamedDependency[ReportUsage],
        budget_rules: NamedDependency[BudgetRules],
        start: PeriodStart = None,
        end: PeriodEnd = None,
        owner: Annotated[
            str | None,
            QueryParameter(name="user", description="Username (exact).", schema_extra=QUERY_TEXT),
        ] = None,
        model: Annotated[
            str | None, QueryParameter(description="Model id (exact).", schema_extra=QUERY_TEXT)
        ] = None,
        group_by: Annotated[
            str | None,
            QueryParameter(
                description="Any of `user`, `model` and `day` (UTC), comma separated, "
                "each at most once; `user,model` by default.",
                schema_extra=QUERY_GROUP_BY,
            ),
        ] = None,
    ) -> Response[list[UsageOut]]:
        """Token usage and cost of the models' replies and calls per user, model and/or
        UTC day, most tokens first (by day: oldest day first, then most tokens); cost at
        the models' prices when the calls were made."""
        result = await report_usage(
            ReportUsageRequest(
                actor=staff,
                period=period(start, end),
                username=text_filter(owner, "user"),
                model=text_filter(model, "model"),
                grouping=grouping(group_by),
            ),
            page,
        )
        return paged(
            request, result, [usage_out(row, budget_rules.currency) for row in result.items]
        )

    @get("/audit-log/", operation_id="api_admin_audit_log", response_headers=PAGINATION_HEADERS)
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        staff: NamedDependency[User],
        page: NamedDependency[PageRequest],
        list_audit_log: NamedDependency[ListAuditLog],
        actor: Annotated[
            str | None, QueryParameter(description="Admin's username.", schema_extra=QUERY_TEXT)
        ] = None,
        action: Annotated[
            str | None,
            QueryParameter(description="e.g. `conversation.close`.", schema_extra=QUERY_TEXT),
        ] = None,
        target_type: Annotated[
            str | None,
            QueryParameter(description="`conversation` or `user`.", schema_extra=QUERY_TEXT),
        ] = None,
        target_id: Annotated[int | None, QueryParameter(description="Target's id.")] = None,
    ) -> Response[list[AuditEntryOut]]:
        """What admins did, newest first: who, what, to which target, when."""
        result = await list_audit_log(
            ListAuditLogRequest(
                actor=staff,
                actor_username=text_filter(actor, "actor"),
                action=text_filter(action, "action"),
                target_type=text_filter(target_type, "target_type"),
                target_id=target_id,
            ),
            page,
        )
        return paged(request, result, [audit_entry_out(e) for e in result.items])
