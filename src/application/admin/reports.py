"""Admins' reports: token usage and the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin.requests import ListAuditLogRequest, ReportUsageRequest
from application.admin.steps import IDS, UnknownUser, owner_id_of
from application.admin_ports import (
    AdminUnitOfWork,
    AuditCriteria,
    AuditEntry,
    UsageCriteria,
    UsageRow,
)
from application.pagination import Page, PageRequest
from domain.monitoring import TimeRange, UsageGrouping, require_staff


class ReportUsage:
    """Token usage of the models' replies and of the calls no conversation keeps (the
    OpenAI-compatible endpoint's); failed ones count as requests with their tokens,
    usually 0, grouped by any of user, model and day (the UTC date; user and model by
    default), most tokens first, within a period; grouped by day, oldest day first and
    most tokens first within a day. A username and a model id (exact) narrow it down."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: ReportUsageRequest, page: PageRequest) -> Page[UsageRow]:
        require_staff(query.actor)
        async with self._uow as uow:
            try:
                owner_id = await owner_id_of(uow, query.username)
            except UnknownUser:
                return Page([], 0, page)
            criteria = UsageCriteria(
                period=query.period,
                owner_id=owner_id,
                model=query.model,
                by_user=UsageGrouping.USER in query.grouping,
                by_model=UsageGrouping.MODEL in query.grouping,
                by_day=UsageGrouping.DAY in query.grouping,
            )
            return await uow.admin.usage(criteria, page)


@dataclass(frozen=True, kw_only=True)
class OwnUsageRequest:
    owner_id: int
    period: TimeRange


class ReportOwnUsage:
    """The user's own token usage per model within a period, most tokens first: the
    replies in their conversations and their calls no conversation keeps (the
    OpenAI-compatible endpoint's), failed ones included."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: OwnUsageRequest, page: PageRequest) -> Page[UsageRow]:
        criteria = UsageCriteria(
            period=query.period, owner_id=query.owner_id, by_user=False, by_model=True
        )
        async with self._uow as uow:
            return await uow.admin.usage(criteria, page)


class ListAuditLog:
    """The audit log, newest first: who did what to which conversation or user, when.
    Filters (exact) combine: actor username, action, target type and id."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: ListAuditLogRequest, page: PageRequest) -> Page[AuditEntry]:
        require_staff(query.actor)
        criteria = AuditCriteria(
            actor_username=query.actor_username,
            action=query.action,
            target_type=query.target_type,
            target_id=query.target_id,
        )
        if query.target_id is not None and query.target_id not in IDS:
            return Page([], 0, page)
        async with self._uow as uow:
            return await uow.audit.entries(criteria, page)
