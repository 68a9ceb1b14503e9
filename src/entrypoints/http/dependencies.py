"""Handler dependencies resolved one after another.

Litestar resolves each batch of independent dependencies concurrently, in an anyio task
group: a task per dependency. Parley's are container look-ups (synchronous, a few
microseconds) and at most one awaited authentication, which gain nothing from running
at once; the task group was a measurable share of a chat turn's CPU (bench/: the chat
handler's five dependencies became five tasks per request). Litestar offers no switch,
so its resolver is replaced by one that awaits each dependency in turn: the same
dependencies, the same order of batches, the first failure raised as before."""

from __future__ import annotations

from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection


async def _resolve_in_order(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_order() -> None:
    KwargsModel.resolve_dependencies = _resolve_in_order  # type: ignore[method-assign]
