"""Which model a user may name: one the catalogue can serve now."""

from __future__ import annotations

from application.ports import ModelCatalog


def unavailable_model(
    catalog: ModelCatalog, field: str, model_id: str | None
) -> dict[str, list[str]]:
    """The field error for a model the catalogue cannot serve now (none if it can, or if
    no model was named), to merge with a request's other field errors."""
    if model_id is None or catalog.get(model_id) is not None:
        return {}
    return {field: [f'"{model_id}" is not an available model.']}
