"""validate_registration names every field that breaks a rule, all at once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.users import normalized_username, username_key, validate_registration


def failing_fields(username: str, email: str, password: str) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as raised:
        validate_registration(username, email, password)
    return raised.value.field_errors


@pytest.mark.parametrize(
    ("username", "email", "password"),
    [
        ("alice", "alice@example.com", "correct horse battery"),
        ("a.b+c-d_e@f", "x@y.io", "s3cret-enough"),
        ("Zoë", "zoe@example.org", "pässwörd-long"),
        ("u" * 150, "a@b.cd", "p" * 1024),
    ],
)
def test_good_registrations_pass(username: str, email: str, password: str) -> None:
    validate_registration(username, email, password)


def test_every_failing_field_is_reported_at_once() -> None:
    errors = failing_fields("bad name!", "not-an-email", "123")
    assert set(errors) == {"username", "email", "password"}
    assert any("too short" in m for m in errors["password"])
    assert any("numeric" in m for m in errors["password"])


def test_blank_fields_are_each_reported() -> None:
    errors = failing_fields("", "", "")
    assert set(errors) == {"username", "email", "password"}
    assert all("blank" in msgs[0] for msgs in errors.values())


@pytest.mark.parametrize(
    ("username", "email", "password", "field", "fragment"),
    [
        ("has space", "a@b.cd", "correct horse", "username", "valid username"),
        ("u" * 151, "a@b.cd", "correct horse", "username", "150"),
        ("alice\n", "a@b.cd", "correct horse", "username", "valid username"),
        ("alice", "no-at-sign.com", "correct horse", "email", "valid email"),
        ("alice", "a@nodot", "correct horse", "email", "valid email"),
        ("alice", "a b@c.de", "correct horse", "email", "valid email"),
        ("alice", "a@" + "b" * 250 + ".cd", "correct horse", "email", "valid email"),
        ("alice", "a@b.cd", "short", "password", "too short"),
        ("alice", "a@b.cd", "1234567890", "password", "numeric"),
        ("Alice.Smith", "a@b.cd", "alice.smith", "password", "similar"),
        ("alice", "a@b.cd", "p" * 1025, "password", "1024"),
        ("alice", "a@b.cd", " " * 8, "password", "visible"),
        ("alice", "a@b.cd", "\u200b" * 8, "password", "visible"),
        ("alice", "a@b.cd", "\u3000\t\u200d\u2060 \n\u00a0\u200b", "password", "visible"),
    ],
)
def test_each_rule_is_reported_on_its_own_field(
    username: str, email: str, password: str, field: str, fragment: str
) -> None:
    errors = failing_fields(username, email, password)
    assert set(errors) == {field}
    assert any(fragment in message for message in errors[field])


usernames = st.text(
    alphabet=st.characters(categories=["Ll", "Lu", "Nd"]) | st.sampled_from("@.+-_"),
    min_size=1,
    max_size=150,
)


@settings(max_examples=100, deadline=None)
@given(username=usernames)
def test_any_username_of_allowed_characters_passes(username: str) -> None:
    password = "Zz9-" + "correct horse"
    validate_registration(username, "someone@example.com", password)


def test_full_width_and_case_variants_share_one_username() -> None:
    assert normalized_username("ａｌｉｃｅ") == "alice"
    assert username_key("ADMIN") == username_key("admin") == username_key("ＡＤＭＩＮ")
    assert username_key("Straße") == username_key("STRASSE")
    assert username_key("alice") != username_key("alicia")
