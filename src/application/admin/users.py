"""Admins and accounts: list, deactivate, reactivate."""

from __future__ import annotations

from dataclasses import replace

from application.admin.requests import AdminUserRef, ListUsersRequest
from application.admin.steps import audit, existing_id
from application.admin_ports import (
    AdminUnitOfWork,
    UserSummary,
)
from application.budgets import BudgetRules
from application.pagination import Page, PageRequest
from application.ports import Clock
from domain.budgets import PeriodSpend
from domain.errors import NotFound
from domain.monitoring import (
    AuditAction,
    CannotDeactivateSelf,
    require_staff,
)


class ListUsers:
    """Every account, newest first, with its conversation and message counts and what it
    spent this day and this month; ``username`` filters by exact name."""

    def __init__(self, uow: AdminUnitOfWork, rules: BudgetRules, clock: Clock) -> None:
        self._uow = uow
        self._rules = rules
        self._clock = clock

    async def __call__(self, query: ListUsersRequest, page: PageRequest) -> Page[UserSummary]:
        require_staff(query.actor)
        window = self._rules.window(self._clock.now())
        async with self._uow as uow:
            found = await uow.admin.users(query.username, page)
            spent = await uow.spending.spent_by_user([u.id for u in found.items], window)
        items = [replace(u, spent=spent.get(u.id, PeriodSpend())) for u in found.items]
        return Page(items, found.total, found.request)


class DeactivateUser:
    """Deactivate an account. Its access tokens, API tokens and browser sessions stop
    working at once; refresh and API tokens are revoked for good, so reactivating does
    not bring them back. Admins cannot deactivate themselves (403). Idempotent; audited
    as ``user.deactivate``."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminUserRef) -> UserSummary:
        require_staff(ref.actor)
        if ref.user_id == ref.actor.id:
            raise CannotDeactivateSelf()
        now = self._clock.now()
        async with self._uow as uow:
            user = await uow.users.get(existing_id(ref.user_id, "User"))
            if user is None:
                raise NotFound("User not found.")
            await uow.activation.set_active(ref.user_id, False)
            await uow.users.revoke_credentials(ref.user_id, now)
            await uow.refresh_tokens.revoke_all_of(ref.user_id, now)
            await uow.api_tokens.revoke_all(ref.user_id)
            await audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.USER_DEACTIVATE,
                "user",
                ref.user_id,
                username=user.username,
                was_active=user.is_active,
            )
            summary = await uow.admin.user(ref.user_id)
            await uow.commit()
        assert summary is not None
        return summary


class ReactivateUser:
    """Let a deactivated account sign in again (with its password: earlier tokens stay
    revoked). Idempotent; audited as ``user.reactivate``."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminUserRef) -> UserSummary:
        require_staff(ref.actor)
        async with self._uow as uow:
            user = await uow.users.get(existing_id(ref.user_id, "User"))
            if user is None:
                raise NotFound("User not found.")
            await uow.activation.set_active(ref.user_id, True)
            await audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.USER_REACTIVATE,
                "user",
                ref.user_id,
                username=user.username,
                was_active=user.is_active,
            )
            summary = await uow.admin.user(ref.user_id)
            await uow.commit()
        assert summary is not None
        return summary
