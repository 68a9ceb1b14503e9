"""Admin monitoring use cases: every user's conversations, statistics, accounts, token
usage and the audit log. Every one of them is for active staff only (403 otherwise);
every change an admin makes, and every conversation an admin reads, is audited in the
same transaction as the action itself."""

from application.admin.conversations import (
    CloseAnyConversation,
    GetAnyConversation,
    GetConversationStats,
    ListAllConversations,
    ReopenAnyConversation,
)
from application.admin.limits import (
    GetUserBudget,
    GetUserModels,
    SetUserBudget,
    SetUserBudgetRequest,
    SetUserModels,
    SetUserModelsRequest,
    UserModels,
)
from application.admin.providers import (
    GetProviderHealth,
    GetProviderHealthRequest,
    ProviderHealthReport,
)
from application.admin.reports import ListAuditLog, OwnUsageRequest, ReportOwnUsage, ReportUsage
from application.admin.requests import (
    SEARCH_COUNT_LIMIT,
    AdminConversationDetail,
    AdminConversationRef,
    AdminUserRef,
    ListAllConversationsRequest,
    ListAuditLogRequest,
    ListUsersRequest,
    ReportUsageRequest,
)
from application.admin.users import DeactivateUser, ListUsers, ReactivateUser

__all__ = [
    "SEARCH_COUNT_LIMIT",
    "AdminConversationDetail",
    "AdminConversationRef",
    "AdminUserRef",
    "CloseAnyConversation",
    "DeactivateUser",
    "GetAnyConversation",
    "GetConversationStats",
    "GetProviderHealth",
    "GetProviderHealthRequest",
    "GetUserBudget",
    "GetUserModels",
    "ListAllConversations",
    "ListAllConversationsRequest",
    "ListAuditLog",
    "ListAuditLogRequest",
    "ListUsers",
    "ListUsersRequest",
    "OwnUsageRequest",
    "ProviderHealthReport",
    "ReactivateUser",
    "ReopenAnyConversation",
    "ReportOwnUsage",
    "ReportUsage",
    "ReportUsageRequest",
    "SetUserBudget",
    "SetUserBudgetRequest",
    "SetUserModels",
    "SetUserModelsRequest",
    "UserModels",
]
