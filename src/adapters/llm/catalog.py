"""The model catalogue: which public model ids can be served now."""

from __future__ import annotations

from collections.abc import Iterable

from application.ports import ModelInfo


class StaticModelCatalog:
    def __init__(self, models: Iterable[ModelInfo], default_model: str) -> None:
        self._models = {model.id: model for model in models}
        if default_model not in self._models:
            raise ValueError(f"default model {default_model!r} is not in the catalogue")
        self._default = default_model

    @property
    def default_model(self) -> str:
        return self._default

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def available(self) -> list[ModelInfo]:
        return list(self._models.values())
