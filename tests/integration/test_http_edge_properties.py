"""Property tests at the HTTP edge, against one running server (the offline echo model).

Whatever a client sends, Parley answers with a documented status (never 5xx) in the
dialect's error shape -- ``{field: [...]}`` or ``{detail, code}`` on ``/api/...``,
``{error, code[, fields]}`` on ``/api/v1/...`` -- and stores text exactly as sent.
Message lengths are counted in code points (Python ``len``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration.admin_support import make_staff
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server

# A new connection per request: on a reused connection the in-thread test server answers
# ~40 ms late (its listening socket is made with proto 0, so asyncio never sets
# TCP_NODELAY on accepted connections and Nagle meets delayed ACKs).
NO_KEEP_ALIVE = httpx.Limits(max_keepalive_connections=0)
LIMIT = 4000
JSON = {"content-type": "application/json"}

edge = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def parley(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(database_url, tmp_path_factory.mktemp("edge")) as running:
        yield running


@pytest.fixture(scope="module")
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as client:
        yield client


@dataclass
class Me:
    account: Account
    conversation: int
    setting: int

    @property
    def auth(self) -> dict[str, str]:
        return self.account.bearer


@pytest.fixture(scope="module")
def me(http: httpx.Client) -> Me:
    account = register(http, "edge")
    conversation = http.post("/api/conversations/", headers=account.bearer).json()["id"]
    setting = http.get("/api/chat-setting/", headers=account.bearer).json()["id"]
    return Me(account, conversation, setting)


def _message_count(parley: RunningServer, me: Me) -> int:
    return int(
        query(
            parley.settings.database_url,
            "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.owner_id = :owner",
            owner=me.account.id,
        )[0][0]
    )


def _conversation_count(parley: RunningServer, me: Me) -> int:
    return int(
        query(
            parley.settings.database_url,
            "SELECT count(*) FROM conversations WHERE owner_id = :owner",
            owner=me.account.id,
        )[0][0]
    )


def _documented_error(response: httpx.Response) -> str | None:
    """None if the response is a documented answer, else what is wrong with it."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if status < 400:
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"{status} is not JSON: {response.headers.get('content-type')}"
    body = response.json()
    v1 = response.request.url.path.startswith("/api/v1/")
    if not isinstance(body, dict):
        return f"{status} body is not an object: {body!r}"

    def field_errors(value: Any) -> bool:
        return (
            isinstance(value, dict)
            and bool(value)
            and all(
                isinstance(k, str)
                and isinstance(v, list)
                and v
                and all(isinstance(m, str) for m in v)
                for k, v in value.items()
            )
        )

    if v1:
        if not (isinstance(body.get("error"), str) and isinstance(body.get("code"), str)):
            return f"{status} v1 body without error/code: {body}"
        if set(body) - {"error", "code", "fields"}:
            return f"{status} v1 body with extra keys: {body}"
        if "fields" in body and not field_errors(body["fields"]):
            return f"{status} v1 fields malformed: {body}"
        return None
    if set(body) == {"detail", "code"} and all(isinstance(v, str) for v in body.values()):
        return None
    if status == 400 and field_errors(body):
        return None
    return f"{status} /api body in neither shape: {body}"


# ---- text round-trips exactly ------------------------------------------------------------

visible_text = st.text(min_size=1, max_size=300).filter(lambda text: text.strip() != "")


@edge
@given(text=visible_text, dialect=st.sampled_from(["api", "v1"]))
@example(text="a\x00b", dialect="api")  # NUL: stored as sent, or refused as a field error
@example(text="你好，世界！🙂 e\u0301 \u202e RTL", dialect="v1")
def test_unicode_messages_round_trip_exactly(
    parley: RunningServer, http: httpx.Client, me: Me, text: str, dialect: str
) -> None:
    if dialect == "api":
        response = http.post(
            f"/api/conversations/{me.conversation}/send_message/",
            json={"message": text},
            headers=me.auth,
        )
    else:
        response = http.post(
            "/api/v1/messages/chat/",
            json={"message": text, "conversation_id": me.conversation},
            headers=me.auth,
        )
    assert _documented_error(response) is None, _documented_error(response)
    if response.status_code == 400 and "\x00" in text:
        return  # refusing NUL is fine, as long as it is a field error (checked above)
    assert response.status_code == 201, response.text
    user_message = response.json()["user_message"]
    assert user_message["content"] == text
    stored = query(
        parley.settings.database_url,
        "SELECT content FROM messages WHERE id = :id",
        id=user_message["id"],
    )
    assert stored == [(text,)]


# A "character" here is a code point; a few that are more than one UTF-16 unit or byte.
unit = st.one_of(
    st.sampled_from(["a", "é", "中", "😀", "𝕏", "\u0301", "\u200b", "ﷺ"]),
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
)


@settings(edge, max_examples=12)
@given(char=unit, dialect=st.sampled_from(["api", "v1"]))
def test_exactly_the_limit_is_accepted_and_one_more_is_refused(
    parley: RunningServer, http: httpx.Client, me: Me, char: str, dialect: str
) -> None:
    def send(text: str, conversation: int | None) -> httpx.Response:
        if dialect == "api":
            assert conversation is not None
            return http.post(
                f"/api/conversations/{conversation}/send_message/",
                json={"message": text},
                headers=me.auth,
            )
        body: dict[str, Any] = {"message": text}
        if conversation is not None:
            body["conversation_id"] = conversation
        return http.post("/api/v1/messages/chat/", json=body, headers=me.auth)

    longest = "x" + char * (LIMIT - 1)
    assert len(longest) == LIMIT
    accepted = send(longest, me.conversation)
    assert accepted.status_code == 201, accepted.text[:300]
    stored = query(
        parley.settings.database_url,
        "SELECT content FROM messages WHERE id = :id",
        id=accepted.json()["user_message"]["id"],
    )
    assert stored == [(longest,)]

    messages, conversations = _message_count(parley, me), _conversation_count(parley, me)
    refused = send(longest + char, me.conversation)
    assert refused.status_code == 400
    fields = refused.json()["fields"] if dialect == "v1" else refused.json()
    assert "message" in fields
    if dialect == "v1":  # a refused first message leaves no conversation behind
        assert send(longest + char, None).status_code == 400
    assert (_message_count(parley, me), _conversation_count(parley, me)) == (
        messages,
        conversations,
    )


# ---- bodies that are not what the endpoint reads -----------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("message nested 10,000 deep", b'{"message": ' + _nested(10_000) + b"}"),
        ("body nested 100,000 deep", _nested(100_000)),
        ("objects nested 10,000 deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        ("a 2 MB message", json.dumps({"message": "x" * 2_000_000}).encode()),
        ("100,000 unknown keys", json.dumps({f"k{i}": i for i in range(100_000)}).encode()),
        ("a 10,000-digit number", b'{"message": "hi", "stream": 1' + b"0" * 10_000 + b"}"),
        ("an unterminated string", b'{"message": "hi'),
        ("a lone surrogate", b'{"message": "\\ud800"}'),
        ("invalid UTF-8", b'{"message": "\xff\xfe"}'),
        ("NaN", b'{"message": NaN}'),
        ("empty", b""),
        ("null", b"null"),
        ("a list", b'["message"]'),
    ],
)
def test_malformed_huge_and_deep_bodies_are_4xx(
    parley: RunningServer, http: httpx.Client, me: Me, name: str, body: bytes
) -> None:
    before = _message_count(parley, me)
    for path in (f"/api/conversations/{me.conversation}/send_message/", "/api/v1/messages/chat/"):
        response = http.post(path, content=body, headers={**me.auth, **JSON})
        assert 400 <= response.status_code < 500, (name, path, response.status_code)
        assert _documented_error(response) is None, (name, _documented_error(response))
    assert _message_count(parley, me) == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"hello there"),
        ("application/x-www-form-urlencoded", b"message=hello+there"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--x--\r\n',
        ),
        ("application/xml", b"<message>hello</message>"),
        (None, b"message=hello"),
    ],
)
def test_bodies_of_other_types_are_4xx(
    parley: RunningServer, http: httpx.Client, me: Me, content_type: str | None, body: bytes
) -> None:
    before = _message_count(parley, me)
    headers = dict(me.auth)
    if content_type is not None:
        headers["content-type"] = content_type
    for path in (f"/api/conversations/{me.conversation}/send_message/", "/api/v1/messages/chat/"):
        response = http.post(path, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (content_type, path, response.text)
        assert _documented_error(response) is None, _documented_error(response)
    assert _message_count(parley, me) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_body_sent_as_another_type_is_refused(
    parley: RunningServer, http: httpx.Client, me: Me, content_type: str | None
) -> None:
    """A JSON API reads application/json. Taking JSON from text/plain or form posts (as
    seed 004's DRF would not: 415, or 400 when there is no type) makes the endpoint a
    target for cross-site "simple" requests that skip CORS preflight."""
    before = _message_count(parley, me)
    headers = dict(me.auth)
    if content_type is not None:
        headers["content-type"] = content_type
    response = http.post(
        f"/api/conversations/{me.conversation}/send_message/",
        content=b'{"message": "sent as ' + str(content_type).encode() + b'"}',
        headers=headers,
    )
    assert 400 <= response.status_code < 500, (content_type, response.status_code)
    assert _documented_error(response) is None
    assert _message_count(parley, me) == before


# ---- numbers out of range ----------------------------------------------------------------


@edge
@given(temperature=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()))
@example(temperature=2.0000001)
@example(temperature=-0.0)
@example(temperature=10**400)
def test_temperature_outside_0_to_2_is_a_field_error(
    http: httpx.Client, me: Me, temperature: float
) -> None:
    response = http.patch(
        f"/api/chat-setting/{me.setting}/", json={"temperature": temperature}, headers=me.auth
    )
    assert _documented_error(response) is None, _documented_error(response)
    if 0 <= temperature <= 2:
        assert response.status_code == 200
        assert response.json()["temperature"] == pytest.approx(temperature)
    else:
        assert response.status_code == 400
        assert "temperature" in response.json()


@edge
@given(max_tokens=st.one_of(st.integers(), st.integers(-(2**70), 2**70)))
@example(max_tokens=1_000_001)
@example(max_tokens=0)
@example(max_tokens=2**63)
def test_max_tokens_outside_1_to_a_million_is_a_field_error(
    http: httpx.Client, me: Me, max_tokens: int
) -> None:
    response = http.put(
        f"/api/chat-setting/{me.setting}/",
        json={"ai_model": "echo", "temperature": 0.5, "max_tokens": max_tokens},
        headers=me.auth,
    )
    assert _documented_error(response) is None, _documented_error(response)
    if 1 <= max_tokens <= 1_000_000:
        assert response.status_code == 200
        assert response.json()["max_tokens"] == max_tokens
    else:
        assert response.status_code == 400
        assert list(response.json()) == ["max_tokens"]


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"1.5"', b"true"])
def test_non_numbers_for_temperature_are_400(http: httpx.Client, me: Me, raw: bytes) -> None:
    response = http.patch(
        f"/api/chat-setting/{me.setting}/",
        content=b'{"temperature": ' + raw + b"}",
        headers={**me.auth, **JSON},
    )
    assert response.status_code == 400
    assert _documented_error(response) is None


@edge
@given(limit=st.integers(), offset=st.integers(), dialect=st.sampled_from(["api", "v1"]))
@example(limit=50, offset=2**63, dialect="api")
@example(limit=50, offset=2**31, dialect="v1")
@example(limit=501, offset=-1, dialect="api")
def test_limit_and_offset_out_of_range_are_field_errors(
    http: httpx.Client, me: Me, limit: int, offset: int, dialect: str
) -> None:
    path = "/api/conversations/" if dialect == "api" else "/api/v1/conversations/"
    response = http.get(path, params={"limit": limit, "offset": offset}, headers=me.auth)
    assert _documented_error(response) is None, _documented_error(response)
    if not 1 <= limit <= 500 or offset < 0:
        assert response.status_code == 400
        fields = response.json()["fields"] if dialect == "v1" else response.json()
        assert ("limit" in fields) == (not 1 <= limit <= 500)
        if offset < 0:
            assert "offset" in fields
        elif offset <= 1_000_000:
            assert "offset" not in fields
    else:
        # A far-away page is empty, or an offset field error: not a server error.
        assert response.status_code in (200, 400)
        if response.status_code == 400:
            fields = response.json()["fields"] if dialect == "v1" else response.json()
            assert list(fields) == ["offset"]


@edge
@given(identifier=st.one_of(st.integers(min_value=2**31 - 2), st.integers(max_value=0)))
@example(identifier=2**31)
@example(identifier=2**63)
@example(identifier=10**30)
def test_ids_beyond_any_row_are_404_not_500(http: httpx.Client, me: Me, identifier: int) -> None:
    """Ids come from the client: a number too big for the id column is an id no object
    has (404), not a database error."""
    answers = [
        http.get(f"/api/conversations/{identifier}/", headers=me.auth),
        http.get(f"/api/v1/conversations/{identifier}/messages/", headers=me.auth),
        http.get("/api/v1/messages/", params={"conversation_id": identifier}, headers=me.auth),
        http.post(
            "/api/v1/messages/chat/",
            json={"conversation_id": identifier, "message": "hello?"},
            headers=me.auth,
        ),
        http.patch(f"/api/chat-setting/{identifier}/", json={"temperature": 1}, headers=me.auth),
    ]
    for response in answers:
        assert _documented_error(response) is None, (
            response.request.method,
            response.request.url.path,
            _documented_error(response),
        )
        assert response.status_code == 404, (response.request.url, response.text)


# ---- NUL: a valid JSON character that PostgreSQL text cannot hold -------------------------

NUL = "nul\x00here"


@pytest.mark.parametrize(
    ("method", "path", "body", "who"),
    [
        ("POST", "/api/v1/login/", {"username": NUL, "password": "whatever-pass"}, None),
        ("POST", "/api/auth/token/", {"username": NUL, "password": "whatever-pass"}, None),
        ("POST", "/api/auth/session/", {"username": NUL, "password": "whatever-pass"}, None),
        (
            "POST",
            "/api/v1/register/",
            {"username": NUL, "email": "nul@example.com", "password": "long-enough-1"},
            None,
        ),
        ("POST", "/api/v1/conversations/", {"title": NUL}, "me"),
        ("PATCH", "/api/v1/conversations/{conversation}/", {"title": NUL}, "me"),
        ("POST", "/api/conversations/{conversation}/send_message/", {"message": NUL}, "me"),
        ("PATCH", "/api/chat-setting/{setting}/", {"ai_model": NUL}, "me"),
        ("GET", "/api/admin/conversations/?search=nul%00here", None, "staff"),
        ("GET", "/api/admin/conversations/?user=nul%00here", None, "staff"),
        ("GET", "/api/admin/users/?username=nul%00here", None, "staff"),
        ("GET", "/api/admin/usage/?model=nul%00here", None, "staff"),
        ("GET", "/api/admin/audit-log/?action=nul%00here", None, "staff"),
    ],
)
def test_nul_in_text_is_stored_or_refused_never_a_server_error(
    parley: RunningServer,
    http: httpx.Client,
    me: Me,
    method: str,
    path: str,
    body: Any,
    who: str | None,
) -> None:
    headers: dict[str, str] = {}
    if who == "me":
        headers = me.auth
    elif who == "staff":
        headers = make_staff(parley, http, "nulstaff").bearer
    url = path.format(conversation=me.conversation, setting=me.setting)
    response = http.request(method, url, json=body, headers=headers)
    assert _documented_error(response) is None, (url, _documented_error(response))
    if response.status_code == 201 and "message" in (body or {}):
        assert response.json()["user_message"]["content"] == NUL  # stored as sent


# ---- duplicate keys ----------------------------------------------------------------------


def test_duplicate_json_keys_are_resolved_the_same_way_every_time(
    parley: RunningServer, http: httpx.Client, me: Me
) -> None:
    """Observed (and pinned here): the last occurrence wins, as in Python's json and
    JavaScript's JSON.parse."""
    body = b'{"message": "first", "message": "second"}'
    stored = []
    for _ in range(3):
        response = http.post(
            f"/api/conversations/{me.conversation}/send_message/",
            content=body,
            headers={**me.auth, **JSON},
        )
        assert response.status_code == 201
        stored += query(
            parley.settings.database_url,
            "SELECT content FROM messages WHERE id = :id",
            id=response.json()["user_message"]["id"],
        )
    assert stored == [("second",)] * 3
    settings_body = b'{"temperature": 0.5, "temperature": 5}'
    answers = {
        http.patch(
            f"/api/chat-setting/{me.setting}/", content=settings_body, headers={**me.auth, **JSON}
        ).status_code
        for _ in range(3)
    }
    assert answers == {400}


# ---- anything at all in every field ------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def _bodies(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """An object with any subset of the fields, each valid-looking or any JSON value,
    sometimes an unknown key; or, rarely, not an object at all."""
    valued = {name: st.one_of(good, json_values) for name, good in fields.items()}
    objects = st.fixed_dictionaries({}, optional=valued).flatmap(
        lambda body: st.dictionaries(st.text(max_size=6), json_values, max_size=1).map(
            lambda extra: {**extra, **body}
        )
    )
    return st.one_of(objects, objects, objects, json_values)


usernames = st.from_regex(r"\A[\w.@+-]{1,20}\Z", fullmatch=True)
passwords = st.text(min_size=8, max_size=30)
ENDPOINTS: dict[str, tuple[str, str, dict[str, st.SearchStrategy[Any]], bool]] = {
    # name: (method, path, fields with plausible values, authenticated?)
    "register": (
        "POST",
        "/api/v1/register/",
        {
            "username": usernames,
            "email": st.emails(),
            "password": passwords,
        },
        False,
    ),
    "login": ("POST", "/api/v1/login/", {"username": usernames, "password": passwords}, False),
    "refresh": ("POST", "/api/v1/token/refresh/", {"refresh": st.text(max_size=40)}, False),
    "api token": (
        "POST",
        "/api/auth/token/",
        {"username": usernames, "password": passwords},
        False,
    ),
    "chat-setting PUT": (
        "PUT",
        "/api/chat-setting/{setting}/",
        {
            "ai_model": st.just("echo"),
            "temperature": st.floats(0, 2),
            "max_tokens": st.integers(1, 1_000_000),
        },
        True,
    ),
    "chat-setting PATCH": (
        "PATCH",
        "/api/chat-setting/{setting}/",
        {
            "ai_model": st.sampled_from(["echo", "gpt-6.1-sol"]),
            "temperature": st.floats(0, 2),
            "max_tokens": st.integers(1, 1_000_000),
        },
        True,
    ),
    "send_message": (
        "POST",
        "/api/conversations/{conversation}/send_message/",
        {"message": visible_text, "stream": st.booleans()},
        True,
    ),
    "chat": (
        "POST",
        "/api/v1/messages/chat/",
        {
            "message": visible_text,
            "conversation_id": st.sampled_from(["{conversation}", 0, -1, 2**40]),
            "model": st.sampled_from(["echo", "gpt-6.1-sol", ""]),
            "image_url": st.sampled_from(["https://example.invalid/x.png", "data:,x", ""]),
            "stream": st.booleans(),
        },
        True,
    ),
    "conversation PATCH": (
        "PATCH",
        "/api/v1/conversations/{conversation}/",
        {
            "title": st.text(max_size=250),
            "model": st.sampled_from(["echo", "nope", None]),
            "status": st.sampled_from(["active", "closed", "archived"]),
        },
        True,
    ),
}


def _resolve(value: Any, me: Me) -> Any:
    if value == "{conversation}":
        return me.conversation
    return value


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_any_json_in_any_field_gets_a_documented_answer(
    http: httpx.Client, me: Me, endpoint: str
) -> None:
    method, template, fields, authenticated = ENDPOINTS[endpoint]
    path = template.format(setting=me.setting, conversation=me.conversation)
    headers = {**JSON, **(me.auth if authenticated else {})}

    @edge
    @given(body=_bodies(fields))
    def check(body: Any) -> None:
        if isinstance(body, dict):
            body = {key: _resolve(value, me) for key, value in body.items()}
        response = http.request(method, path, content=json.dumps(body), headers=headers)
        assert _documented_error(response) is None, (body, _documented_error(response))
        if response.status_code == 400 and isinstance(body, dict) and "fields" in response.json():
            unknown = set(response.json()["fields"]) - set(fields) - {"non_field_errors"}
            assert not unknown, (body, response.json())

    check()
    # The conversation may have been closed or renamed on the way: give it back.
    http.patch(
        f"/api/v1/conversations/{me.conversation}/", json={"status": "active"}, headers=me.auth
    )


def test_field_errors_name_every_failing_field_at_once(http: httpx.Client) -> None:
    username = f"e_{uuid.uuid4().hex[:8]}"
    response = http.post(
        "/api/v1/register/", json={"username": "", "email": "not-an-email", "password": "1"}
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"username", "email", "password"}
    missing = http.post("/api/v1/register/", json={"username": username})
    assert missing.status_code == 400
    assert set(missing.json()["fields"]) == {"email", "password"}
