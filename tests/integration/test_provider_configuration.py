"""Swapping providers is configuration and a restart: environment variables and the
TOML file alone change which models exist and where a chat goes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.llm.setup import ModelConfigError
from entrypoints.http.app import build_container
from entrypoints.settings import load_settings
from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import register
from tests.integration.servers import running_server


@pytest.fixture(scope="module")
def dashscope() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key="dashscope-key", models=("qwen-plus-2025-01-25",)) as server:
        yield server


def _models(base_url: str) -> dict[str, dict[str, object]]:
    return {m["id"]: m for m in httpx.get(f"{base_url}/api/v1/models/").json()}


def test_zero_configuration_serves_only_the_offline_echo_model(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(database_url, tmp_path, base=load_settings({})) as server:
        assert list(_models(server.base_url)) == ["echo"]


def test_environment_and_toml_reconfigure_models_and_routing(
    database_url: str, tmp_path: Path, dashscope: FakeLLMServer
) -> None:
    config = tmp_path / "parley.toml"
    config.write_text(
        """
keep_echo = true
remove_models = ["qwen3.7-max"]
default_model = "house"

[models.house]
provider = "dashscope"
upstream = "qwen-plus-2025-01-25"
name = "House model"

[models."qwen3.6-flash"]
name = "Qwen Turbo (renamed)"

[fallbacks]
house = ["echo"]
""",
        encoding="utf-8",
    )
    environment = {
        "PARLEY_CONFIG": str(config),
        "DASHSCOPE_API_KEY": "dashscope-key",
        "DASHSCOPE_BASE_URL": dashscope.flavour_base_url("dashscope"),
    }
    with running_server(database_url, tmp_path, base=load_settings(environment)) as server:
        models = _models(server.base_url)
        assert {"house", "qwen3.6-flash", "qwen3.7-plus", "echo"} <= set(models)
        assert "qwen3.7-max" not in models
        assert "gpt-6-luna" not in models
        assert models["qwen3.6-flash"]["name"] == "Qwen Turbo (renamed)"
        assert models["house"]["provider"] == "Alibaba Cloud"
        assert models["house"]["default"] is True

        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            user = register(http)
            chat = http.post(
                "/api/v1/messages/chat/", json={"message": "route me"}, headers=user.bearer
            )
            assert chat.status_code == 201, chat.text
            assert chat.json()["ai_message"]["model"] == "house"
            sent = dashscope.requests[-1]
            assert sent.json["model"] == "qwen-plus-2025-01-25"
            assert sent.headers["authorization"] == "Bearer dashscope-key"

            # The fallback chain re-points a failing model to echo, by configuration.
            dashscope.default = None
            dashscope.script(*[fake.error(500)] * 3)
            fallback = http.post(
                "/api/v1/messages/chat/", json={"message": "still there?"}, headers=user.bearer
            )
            assert fallback.status_code == 201, fallback.text
            assert fallback.json()["ai_message"]["content"] == "Echo: still there?"
            assert fallback.json()["ai_message"]["model"] == "echo"


def test_a_broken_provider_configuration_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "parley.toml"
    config.write_text('default_model = "gpt-6.1-sol"\n', encoding="utf-8")
    settings = load_settings({"PARLEY_CONFIG": str(config)})
    with pytest.raises(ModelConfigError, match=r"gpt-6\.1-sol"):
        build_container(settings).llm()
