"""The OpenAPI document and the server agree (issue 13 item 9): what the schema allows is
accepted, what the server refuses the schema refuses too, and every status and body the
server answers is documented. One test per gap the contract fuzzing found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis

from tests.integration.admin_support import make_staff
from tests.integration.conftest import Account

# WeChat's redirect carries these; nothing there refuses NUL (an unknown state is a 400).
NOT_REFUSED = {"get /api/v1/auth/wechat/callback ?code", "get /api/v1/auth/wechat/callback ?state"}
NUL_STRINGS = ["\u0000", "a\u0000", "abcdefgh\u0000", "\u0000 hello", "2025-01-31\u0000"]


@pytest.fixture(scope="module")
def document(server: Any) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url) as http:
        return dict(http.get("/schema/openapi.json").json())


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path.rstrip("/")][method])


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def _body_field(document: dict[str, Any], method: str, path: str, field: str) -> Any:
    body = _operation(document, method, path)["requestBody"]["content"]["application/json"]
    return _validator(_resolve(document, body["schema"])["properties"][field])


def _query_parameter(document: dict[str, Any], path: str, name: str) -> Any:
    parameters = _operation(document, "get", path)["parameters"]
    return _validator(next(p["schema"] for p in parameters if p["name"] == name))


def _string_fields(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string a client sends: request-body properties and query parameters."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and "string" in str(parameter["schema"]):
                    yield f"{method} {path} ?{parameter['name']}", parameter["schema"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            for field, schema in _resolve(document, body["schema"]).get("properties", {}).items():
                if "string" in str(schema):
                    yield f"{method} {path} {field}", schema


# ---- titles: at most 200 characters, refused beyond (the schema's maxLength) ----------


def test_a_title_over_200_characters_is_a_400_not_cut(client: httpx.Client, alice: Account) -> None:
    refused = client.post("/api/v1/conversations/", json={"title": "t" * 201}, headers=alice.bearer)
    assert refused.status_code == 400
    assert refused.json()["fields"] == {
        "title": ["Ensure this field has no more than 200 characters."]
    }
    assert client.get("/api/v1/conversations/", headers=alice.bearer).json() == []

    created = client.post("/api/v1/conversations/", json={"title": "t" * 200}, headers=alice.bearer)
    assert created.status_code == 201
    assert created.json()["title"] == "t" * 200
    conversation = created.json()["id"]
    for method in ("PUT", "PATCH"):
        renamed = client.request(
            method,
            f"/api/v1/conversations/{conversation}/",
            json={"title": "n" * 201},
            headers=alice.bearer,
        )
        assert renamed.status_code == 400
        assert set(renamed.json()["fields"]) == {"title"}
    after = client.get(f"/api/v1/conversations/{conversation}/", headers=alice.bearer).json()
    assert after["title"] == "t" * 200


def test_a_long_first_message_still_starts_a_conversation_titled_to_fit(
    client: httpx.Client, alice: Account
) -> None:
    answer = client.post(
        "/api/v1/messages/chat/", json={"message": "word " * 800}, headers=alice.bearer
    )
    assert answer.status_code == 201
    conversation = answer.json()["conversation_id"]
    title = client.get(f"/api/v1/conversations/{conversation}/", headers=alice.bearer).json()
    assert 0 < len(title["title"]) <= 50


# ---- 404s that ids in the query or the body can give are documented ------------------


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs"),
    [
        ("get", "/api/v1/messages/", {"params": {"conversation_id": 999_999}}),
        ("post", "/api/v1/messages/chat/", {"json": {"message": "hi", "conversation_id": 999_999}}),
    ],
)
def test_a_conversation_named_in_the_query_or_body_can_be_a_documented_404(
    client: httpx.Client,
    alice: Account,
    document: dict[str, Any],
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    answer = client.request(method, path, headers=alice.bearer, **request_kwargs)
    assert answer.status_code == 404
    responses = _operation(document, method, path)["responses"]
    assert "404" in responses
    body = _resolve(document, responses["404"]["content"]["application/json"]["schema"])
    _validator(body).validate(answer.json())


# ---- streams are documented as Server-Sent Events, event by event ---------------------


@pytest.mark.parametrize(
    ("dialect", "path", "body"),
    [
        ("v1", "/api/v1/messages/chat", {"message": "hello", "stream": True}),
        ("api", "/api/conversations/{conversation_id}/send_message", {"message": "hello"}),
    ],
)
def test_a_streamed_reply_matches_its_documented_events(
    server: Any,
    client: httpx.Client,
    alice: Account,
    document: dict[str, Any],
    dialect: str,
    path: str,
    body: dict[str, Any],
) -> None:
    stream = _operation(document, "post", path)["responses"]["200"]["content"]
    events = [
        _resolve(document, choice)["properties"]["event"]["const"]
        for choice in stream["text/event-stream"]["schema"]["oneOf"]
    ]
    assert events == ["reply", "delta", "error", "done"]

    conversation = client.post("/api/conversations/", headers=alice.bearer).json()["id"]
    api = schemathesis.openapi.from_dict(document)
    api.config.update(base_url=server.base_url)
    operation = api[path]["POST"]
    case = operation.Case(
        path_parameters={"conversation_id": conversation} if dialect == "api" else {},
        body=body,
        headers={"Accept": "text/event-stream", **alice.bearer},
        media_type="application/json",
    )
    response = case.call()
    assert response.status_code == 200
    assert "event: done" in response.text
    # Each event, with its data read as JSON, against the documented event schemas.
    case.validate_response(response)


# ---- image URLs: what the schema allows, the form check takes --------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "https://",
        "http://:80/x.png",
        "data:image/png,abc",
        "http://a:99999/",  # a port out of range was a 500
        "http://" + "a" * 64 + ".example.com/x.png",  # a label IDNA cannot encode
    ],
)
def test_an_image_url_the_server_refuses_for_its_form_is_outside_the_schema(
    client: httpx.Client, alice: Account, document: dict[str, Any], url: str
) -> None:
    assert not _body_field(document, "post", "/api/v1/messages/chat", "image_url").is_valid(url)
    answer = client.post(
        "/api/v1/messages/chat/", json={"message": "look", "image_url": url}, headers=alice.bearer
    )
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"image_url"}


@pytest.mark.parametrize(
    "url",
    [
        "https://images.example.com/cat.png",
        "http://203.0.113.7:8080/a/b.jpeg?size=large#top",
        "data:image/png;base64,iVBORw0KGgo=",
    ],
)
def test_an_image_url_the_schema_allows_is_well_formed_for_the_server(
    client: httpx.Client, alice: Account, document: dict[str, Any], url: str
) -> None:
    assert _body_field(document, "post", "/api/v1/messages/chat", "image_url").is_valid(url)
    answer = client.post(
        "/api/v1/messages/chat/", json={"message": "look", "image_url": url}, headers=alice.bearer
    )
    # Whether the host answers with an image is beyond any schema; the form is not.
    for message in answer.json().get("fields", {}).get("image_url", []):
        assert "Enter an http(s) URL" not in message
        assert "must be a base64" not in message
        assert "not valid base64" not in message


# ---- NUL: refused by the server, so refused by the schema -----------------------------


def test_no_string_a_client_sends_may_hold_nul_by_the_schema(document: dict[str, Any]) -> None:
    fields = list(_string_fields(document))
    assert len(fields) >= 30
    allowed = [
        (where, value)
        for where, schema in fields
        for value in NUL_STRINGS
        # A field's schema may refer to the document's components (a union of objects).
        if where not in NOT_REFUSED
        and _validator(schema | {"components": document["components"]}).is_valid(value)
    ]
    assert allowed == []


def test_nul_is_refused_by_the_server_where_the_schema_refuses_it(
    client: httpx.Client, alice: Account
) -> None:
    for body in ({"message": "a\u0000"}, {"message": "hi", "image_url": "http://a\u0000"}):
        answer = client.post("/api/v1/messages/chat/", json=body, headers=alice.bearer)
        assert answer.status_code == 400
    answer = client.post("/api/v1/conversations/", json={"title": "a\u0000"}, headers=alice.bearer)
    assert answer.status_code == 400


def test_messages_and_passwords_keep_their_other_rules(document: dict[str, Any]) -> None:
    message = _body_field(document, "post", "/api/v1/messages/chat", "message")
    assert message.is_valid("  hello ")
    assert not message.is_valid("   ")
    assert not message.is_valid("\u001c\u001d")  # blank to Python's str.strip()
    password = _body_field(document, "post", "/api/v1/register", "password")
    assert password.is_valid("correct horse")
    assert not password.is_valid("12345678")
    assert not password.is_valid(" " * 8)
    assert not password.is_valid("\u200b" * 8)


# ---- admin filters: the schema names what the handlers take ----------------------------


@pytest.fixture
def staff(server: Any, client: httpx.Client) -> Account:
    return make_staff(server, client)


@pytest.mark.parametrize(
    ("path", "name", "good", "bad"),
    [
        ("/api/admin/conversations", "status", ["active", "closed"], ["archived", "Active"]),
        (
            "/api/admin/usage",
            "from",
            ["2025-01-31", "2025-01-31T08:30:00Z", "2025-01-31T08:30:00.5+08:00"],
            ["yesterday", "2025-13-01", "31/01/2025", "9999-12-31"],
        ),
        (
            "/api/admin/usage",
            "to",
            ["2025-01-31", "2025-01-31T23:59:59Z"],
            ["tomorrow", "2025-01-32"],
        ),
        (
            "/api/admin/usage",
            "group_by",
            ["user", "model", "user,model", "day", "model,day", "day,user,model"],
            ["week", "user;model", "day,day"],
        ),
        (
            "/api/admin/conversations",
            "search",
            ["hello world", "你好"],
            [" ".join(f"w{i}" for i in range(9)), "x" * 101],
        ),
    ],
)
def test_an_admin_filter_takes_what_its_schema_says_and_refuses_the_rest(
    client: httpx.Client,
    staff: Account,
    document: dict[str, Any],
    path: str,
    name: str,
    good: list[str],
    bad: list[str],
) -> None:
    schema = _query_parameter(document, path, name)
    for value in good:
        assert schema.is_valid(value), value
        answer = client.get(f"{path}/", params={name: value}, headers=staff.bearer)
        assert answer.status_code == 200, (value, answer.text)
    for value in bad:
        assert not schema.is_valid(value), value
        if value != "9999-12-31":  # out of the documented years; see schema_docs._YEAR
            answer = client.get(f"{path}/", params={name: value}, headers=staff.bearer)
            assert answer.status_code == 400, (value, answer.text)
