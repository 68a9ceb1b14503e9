"""Contract fuzzing: schemathesis drives every operation of both dialects from Parley's
own OpenAPI document, as a normal user and as staff. Every response must be documented
(status and body), none may be a 5xx, and schema-valid requests must not be refused."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.wechat_server import FakeWeChatServer
from tests.integration.conftest import register
from tests.integration.servers import RunningServer, query, running_server

# CI runs 12 a operation; set PARLEY_CONTRACT_EXAMPLES (e.g. 60) for a deeper local run.
EXAMPLES_PER_OPERATION = int(os.environ.get("PARLEY_CONTRACT_EXAMPLES", "12"))

# Operations whose input is valid only with state this server issued: a WeChat callback
# needs a `state` from /url/ (bad state is 400 by design). Every other check still runs.
STATE_DEPENDENT = {
    "GET /api/v1/auth/wechat/callback",
    # A file's messages refer to each other (parents, the current branch) and follow a
    # format JSON Schema cannot state: a body the schema allows may still be refused.
    "POST /api/conversations/import",
    "POST /api/v1/conversations/import",
}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # SQLite only: the schema and handlers are the same on PostgreSQL, which the rest of
    # the suite covers; fuzzing both would double CI time for no new cases.
    path = tmp_path_factory.mktemp("contract") / "parley.db"
    with (
        FakeLLMServer(api_key=None, models=("house",)) as upstream,
        FakeWeChatServer() as wechat,
        running_server(
            f"sqlite+aiosqlite:///{path}",
            tmp_path_factory.mktemp("contract-server"),
            keep_echo=True,
            providers={"local": {"base_url": upstream.openai_base_url}},
            models={"house": {"provider": "local", "upstream": "house", "images": True}},
            wechat_app_id=wechat.app_id,
            wechat_app_secret=wechat.app_secret,
            wechat_redirect_uri="https://parley.example.com/wechat",
            wechat_api_base_url=wechat.base_url,
            max_active_conversations=1000,
        ) as server,
    ):
        yield server


def _headers(server: RunningServer, *, staff: bool) -> dict[str, str]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        account = register(http, "staff" if staff else "fuzz")
        if staff:
            query(
                server.settings.database_url,
                "UPDATE users SET is_staff = :yes WHERE id = :id",
                yes=True,
                id=account.id,
            )
        # A conversation and a message, so ids in paths sometimes exist.
        conversation = http.post("/api/conversations/", headers=account.bearer).json()["id"]
        http.post(
            f"/api/conversations/{conversation}/send_message/",
            json={"message": f"hello {uuid.uuid4().hex}"},
            headers=account.bearer,
        )
        return account.bearer


# What JSON Schema cannot state, so a schema-valid request may still be refused for it:
# whether an image URL's host is public and answers with an image the model takes, that
# `to` is not before `from`, and that a username is free (a 400, as DRF answers it). Only
# these refusals are excused, by field and message; a refusal of an image URL's form
# ("http://") still fails.
BEYOND_THE_SCHEMA = {
    "image_url": (
        "Image URLs must point at a public host that answers.",
        "The image URL answered HTTP",
        "The image could not be downloaded.",
        "The URL does not point at a PNG",
        "The data: URI does not hold a",
        "The image is larger than",
        "does not take",
    ),
    "to": ("Must not be before from.",),
    # The OpenAI-compatible endpoint's (param, indices dropped): what a model takes, the
    # one-image limit, and rules across two fields (tool_choice needs tools; a call bound
    # to a conversation takes no tools and ends with the user's message).
    "messages[].content": (
        "Image URLs must point at a public host that answers.",
        "The image URL answered HTTP",
        "The image could not be downloaded.",
        "The URL does not point at a PNG",
        "The data: URI does not hold a",
        "The image is larger than",
        "does not take",
        "One image per message",
    ),
    "tools": ("does not take", "Not taken with a Parley conversation"),
    "response_format": ("does not take", "Not taken with a Parley conversation"),
    "messages": ("does not take",),
    "tool_choice": ("tool_choice is only allowed when tools are given.",),
    "messages[].tool_call_id": ("A tool message answers a tool call",),
    "messages[].role": ("With a conversation, the last message is the user's.",),
    # What the provider refuses of what the caller wrote (e.g. a json_object response
    # format with no "json" in the messages): the provider's 400, passed on.
    "None": ("Model provider",),
    "username": ("A user with that username already exists.",),
}


def _beyond_the_schema(response: Any) -> bool:
    if response.status_code != 400:
        return False
    body = response.json()
    fields = body.get("fields", body) if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # OpenAI's shape
        error = body["error"]
        fields = {re.sub(r"\[\d+\]", "[]", str(error["param"])): [error["message"]]}
    if not isinstance(fields, dict) or not fields:
        return False
    return all(
        name in BEYOND_THE_SCHEMA
        and all(any(known in m for known in BEYOND_THE_SCHEMA[name]) for m in messages)
        for name, messages in fields.items()
    )


def _exercise(operation: Any, headers: dict[str, str]) -> Callable[[], None]:
    excluded: list[CheckFunction] = (
        [positive_data_acceptance] if operation.label in STATE_DEPENDENT else []
    )

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case: Case[Any]) -> None:
        response = case.call(headers=headers)
        beyond: list[CheckFunction] = (
            [positive_data_acceptance] if _beyond_the_schema(response) else []
        )
        case.validate_response(response, excluded_checks=excluded + beyond)

    return exercise


def _fuzz(server: RunningServer, *, staff: bool) -> list[str]:
    """Run every operation's generated cases; return one line per failing operation.

    Each operation gets an account of its own: an operation that ends the caller's
    sessions (logout, logout everywhere) must not leave the rest to be tried only
    without credentials."""
    api = schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json")
    failures: list[str] = []
    tried = 0
    for result in api.get_all_operations():
        if isinstance(result, Err):  # an operation the schema itself fails to describe
            raise result.err()
        operation = result.ok()
        tried += 1
        try:
            _exercise(operation, _headers(server, staff=staff))()
        # FailureGroup is a BaseExceptionGroup, which `except Exception` lets through.
        except (Exception, FailureGroup) as failure:  # report every operation, not the first
            failures.append(f"{operation.label}: {str(failure).strip()[:1500]}")
    assert tried >= 40, f"only {tried} operations in the schema"
    return failures


def test_every_operation_as_a_user(fuzzed: RunningServer) -> None:
    failures = _fuzz(fuzzed, staff=False)
    assert not failures, "\n\n".join(failures)


def test_every_operation_as_staff(fuzzed: RunningServer) -> None:
    failures = _fuzz(fuzzed, staff=True)
    assert not failures, "\n\n".join(failures)
