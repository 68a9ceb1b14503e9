"""How each configured provider and model has been doing: the admin's health view."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.ports import Clock, ModelCatalog
from domain.monitoring import require_staff
from domain.provider_health import CallHealth, RecentCall, call_health
from domain.users import User

HEALTH_WINDOW = timedelta(hours=1)
CALLS_PER_MODEL = 500


class RecentModelCalls(Protocol):
    async def recent(
        self, models: Collection[str], since: datetime, per_model: int
    ) -> Mapping[str, Sequence[RecentCall]]:
        """The calls of each of ``models`` made since ``since`` -- the replies stored in
        conversations and the calls no conversation keeps -- at most ``per_model`` of
        each, the newest. Models without calls may be missing."""
        ...


class ModelCooldowns(Protocol):
    def remaining(self) -> Mapping[str, float]:
        """Seconds of cool-down left for each model cooling in this worker now."""
        ...


@dataclass(frozen=True, kw_only=True)
class GetProviderHealthRequest:
    actor: User


@dataclass(frozen=True, kw_only=True)
class ModelHealth:
    model: str
    health: CallHealth
    cooling_down: bool
    cooldown_until: datetime | None


@dataclass(frozen=True, kw_only=True)
class ProviderHealth:
    provider: str
    models: list[ModelHealth]


@dataclass(frozen=True, kw_only=True)
class ProviderHealthReport:
    window: timedelta
    providers: list[ProviderHealth]


class GetProviderHealth:
    """Per provider and model (every configured one, in the catalogue's order, also with
    no calls): the calls of the last hour (the newest 500 per model at most), their
    success rate, latency percentiles and last error (``domain.provider_health`` has the
    rules), and whether the model is in cool-down after failures.

    The cool-down state is this worker process's: with several workers, each keeps its
    own, and the view shows the one that answered. ``secrets`` (the providers' keys) are
    masked in error messages, whatever else the message says."""

    def __init__(
        self,
        calls: RecentModelCalls,
        cooldowns: ModelCooldowns,
        catalog: ModelCatalog,
        clock: Clock,
        secrets: Collection[str] = (),
    ) -> None:
        self._calls = calls
        self._cooldowns = cooldowns
        self._catalog = catalog
        self._clock = clock
        self._secrets = tuple(secrets)

    async def __call__(self, query: GetProviderHealthRequest) -> ProviderHealthReport:
        require_staff(query.actor)
        models = self._catalog.available()
        now = self._clock.now()
        recent = await self._calls.recent(
            [model.id for model in models], now - HEALTH_WINDOW, CALLS_PER_MODEL
        )
        cooling = self._cooldowns.remaining()
        providers: dict[str, list[ModelHealth]] = {}
        for model in models:
            left = cooling.get(model.id)
            providers.setdefault(model.provider, []).append(
                ModelHealth(
                    model=model.id,
                    health=call_health(recent.get(model.id, ()), self._secrets),
                    cooling_down=left is not None,
                    cooldown_until=None if left is None else now + timedelta(seconds=left),
                )
            )
        return ProviderHealthReport(
            window=HEALTH_WINDOW,
            providers=[ProviderHealth(provider=p, models=m) for p, m in providers.items()],
        )
