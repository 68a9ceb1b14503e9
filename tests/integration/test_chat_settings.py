"""/api/chat-setting/ (seed 004): defaults, full and partial updates, validation."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.conftest import Account


def _settings(client: httpx.Client, who: Account) -> dict[str, Any]:
    response = client.get("/api/chat-setting/", headers=who.bearer)
    assert response.status_code == 200
    settings: dict[str, Any] = response.json()
    return settings


def test_defaults_follow_the_seed_shape(client: httpx.Client, alice: Account) -> None:
    settings = _settings(client, alice)
    assert set(settings) == {"id", "user", "ai_model", "temperature", "max_tokens"}
    assert settings["user"] == alice.id
    assert settings["ai_model"] == "echo"
    assert settings["temperature"] == 0.7
    assert settings["max_tokens"] == 1024
    assert _settings(client, alice)["id"] == settings["id"]


def test_put_replaces_and_patch_changes_one_field(client: httpx.Client, alice: Account) -> None:
    settings_id = _settings(client, alice)["id"]
    url = f"/api/chat-setting/{settings_id}/"
    put = client.put(
        url, json={"ai_model": "echo", "temperature": 1.5, "max_tokens": 200}, headers=alice.bearer
    )
    assert put.status_code == 200
    assert put.json() == {
        "id": settings_id,
        "user": alice.id,
        "ai_model": "echo",
        "temperature": 1.5,
        "max_tokens": 200,
    }
    patched = client.patch(url, json={"temperature": 0}, headers=alice.bearer)
    assert patched.status_code == 200
    assert patched.json()["temperature"] == 0
    assert patched.json()["max_tokens"] == 200
    assert _settings(client, alice)["temperature"] == 0


def test_invalid_settings_report_every_field_and_change_nothing(
    client: httpx.Client, alice: Account
) -> None:
    before = _settings(client, alice)
    url = f"/api/chat-setting/{before['id']}/"
    response = client.put(
        url,
        json={"ai_model": "no-such-model", "temperature": 2.5, "max_tokens": 0},
        headers=alice.bearer,
    )
    assert response.status_code == 400
    assert set(response.json()) == {"ai_model", "temperature", "max_tokens"}
    assert all(isinstance(v, list) and v for v in response.json().values())

    negative = client.patch(url, json={"temperature": -0.1}, headers=alice.bearer)
    assert negative.status_code == 400
    assert set(negative.json()) == {"temperature"}

    wrong_type = client.patch(url, json={"max_tokens": "many"}, headers=alice.bearer)
    assert wrong_type.status_code == 400
    assert set(wrong_type.json()) == {"max_tokens"}

    incomplete = client.put(url, json={"temperature": 1.0}, headers=alice.bearer)
    assert incomplete.status_code == 400
    assert set(incomplete.json()) == {"ai_model", "max_tokens"}

    assert _settings(client, alice) == before


def test_another_users_settings_are_not_found(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    alices = _settings(client, alice)
    response = client.put(
        f"/api/chat-setting/{alices['id']}/",
        json={"ai_model": "echo", "temperature": 1.0, "max_tokens": 5},
        headers=bob.bearer,
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert _settings(client, alice) == alices


def test_max_tokens_reaches_the_model(client: httpx.Client, alice: Account) -> None:
    settings_id = _settings(client, alice)["id"]
    client.patch(f"/api/chat-setting/{settings_id}/", json={"max_tokens": 3}, headers=alice.bearer)
    conversation = client.post("/api/conversations/", headers=alice.bearer).json()
    sent = client.post(
        f"/api/conversations/{conversation['id']}/send_message/",
        json={"message": "one two three four five"},
        headers=alice.bearer,
    )
    # The echo model stops at max_tokens words, as a real model would.
    assert sent.json()["ai_message"]["content"] == "Echo: one two"
