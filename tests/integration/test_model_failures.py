"""A failing model never loses the user's message, and answers 502/503/504 with a code.

The model here is a scripted stand-in behind the real ChatModel port; the thing under
test is what Parley stores and answers when the port fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from dependency_injector import providers

from application.errors import (
    ModelFailure,
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from application.ports import ChatCompletion, ChatDelta, ChatRequest
from entrypoints.container import Container
from tests.integration.conftest import register
from tests.integration.servers import RunningServer, query, running_server


class ScriptedChatModel:
    def __init__(self) -> None:
        self.failure: ModelFailure | None = None
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self.requests.append(request)
        if self.failure is not None:
            raise self.failure
        return ChatCompletion(text="fine", model=request.model, provider="scripted")

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="fine")


@pytest.fixture(scope="module")
def scripted() -> ScriptedChatModel:
    return ScriptedChatModel()


@pytest.fixture(scope="module")
def failing_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedChatModel
) -> Iterator[RunningServer]:
    def configure(container: Container) -> None:
        container.chat_model.override(providers.Object(scripted))

    with running_server(
        database_url, tmp_path_factory.mktemp("failing"), configure=configure
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (ProviderError(), 502, "provider_error"),
        (ProviderAuthError(), 502, "provider_auth"),
        (ProviderUnavailable(), 503, "provider_unavailable"),
        (ProviderTimeout(), 504, "provider_timeout"),
    ],
)
def test_provider_failure_keeps_the_message_and_records_the_failure(
    failing_server: RunningServer,
    scripted: ScriptedChatModel,
    failure: ModelFailure,
    status: int,
    code: str,
) -> None:
    with httpx.Client(base_url=failing_server.base_url, timeout=30) as http:
        user = register(http)
        conversation = http.post("/api/conversations/", headers=user.bearer).json()
        url = f"/api/conversations/{conversation['id']}"
        scripted.failure = failure
        try:
            response = http.post(
                f"{url}/send_message/", json={"message": "are you there?"}, headers=user.bearer
            )
        finally:
            scripted.failure = None
        assert response.status_code == status
        assert response.json()["code"] == code
        assert "detail" in response.json()

        messages = http.get(f"{url}/messages/", headers=user.bearer).json()
        assert [(m["sender"], m["content"], m["status"]) for m in messages] == [
            ("user", "are you there?", "completed"),
            ("ai", "", "failed"),
        ]
        recorded = query(
            failing_server.settings.database_url,
            "SELECT error_code FROM messages WHERE conversation_id = :id AND role = 'assistant'",
            id=conversation["id"],
        )
        assert recorded == [(code,)]

        # The conversation carries on; the failed reply is not shown to the model.
        retry = http.post(f"{url}/send_message/", json={"message": "again"}, headers=user.bearer)
        assert retry.status_code == 201
        seen = [(turn.role, turn.content) for turn in scripted.requests[-1].messages]
        assert seen == [("user", "are you there?"), ("user", "again")]
