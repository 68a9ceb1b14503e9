"""Accounts: the user entity and the rules for what a valid registration is."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import datetime

from domain.errors import InvalidInput

USERNAME_MAX_CHARS = 150
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 1024
EMAIL_MAX_CHARS = 254
# Accounts created through WeChat have no password until their owner sets one.
UNUSABLE_PASSWORD_PREFIX = "!"

# Django's default username rule: letters, digits and @/./+/-/_ (unicode letters allowed).
_USERNAME_PATTERN = re.compile(r"^[\w.@+-]+\Z")
# No "@", space or control character in any part. Spelled without \s so that it means
# the same in Python and in the OpenAPI document's (ECMAScript) regular expressions.
EMAIL_CORE_PATTERN = r"[^@\x00-\x20\x7f-\x9f]+@[^@\x00-\x20\x7f-\x9f]+\.[^@\x00-\x20\x7f-\x9f]+"
_EMAIL_PATTERN = re.compile(EMAIL_CORE_PATTERN)


@dataclass(kw_only=True)
class NewUser:
    """An account as it is before it is stored; storing it gives it its id (``User``)."""

    username: str
    email: str
    password_hash: str
    date_joined: datetime
    is_staff: bool = False
    is_active: bool = True
    credentials_valid_after: datetime | None = None

    def accepts_credentials_issued_at(self, issued_at: datetime) -> bool:
        return credentials_count(self.credentials_valid_after, issued_at)

    @property
    def has_password(self) -> bool:
        return not self.password_hash.startswith(UNUSABLE_PASSWORD_PREFIX)

    def stored_as(self, user_id: int) -> User:
        return User(
            id=user_id, **{field.name: getattr(self, field.name) for field in fields(NewUser)}
        )


@dataclass(kw_only=True)
class User(NewUser):
    """A stored account."""

    id: int


def credentials_count(valid_after: datetime | None, issued_at: datetime) -> bool:
    """Tokens and sessions from before "log out everywhere" no longer count."""
    return valid_after is None or issued_at >= valid_after


def normalized_username(username: str) -> str:
    """As Django does: NFKC, so that "alice" typed in full-width letters is "alice"."""
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """What two usernames must not share: "ADMIN" is taken once "admin" is."""
    return normalized_username(username).casefold()


def validate_registration(username: str, email: str, password: str) -> None:
    """Raise ``InvalidInput`` naming every field that breaks a rule."""
    errors: dict[str, list[str]] = {}
    if username_error := _username_problem(username):
        errors["username"] = [username_error]
    if email_error := _email_problem(email):
        errors["email"] = [email_error]
    password_errors = _password_problems(password, username)
    if password_errors:
        errors["password"] = password_errors
    if errors:
        raise InvalidInput(errors)


def _username_problem(username: str) -> str | None:
    if not username:
        return "This field may not be blank."
    if len(username) > USERNAME_MAX_CHARS:
        return f"Ensure this field has no more than {USERNAME_MAX_CHARS} characters."
    if not _USERNAME_PATTERN.match(username):
        return (
            "Enter a valid username. This value may contain only letters, numbers, "
            "and @/./+/-/_ characters."
        )
    return None


def _email_problem(email: str) -> str | None:
    if not email:
        return "This field may not be blank."
    if len(email) > EMAIL_MAX_CHARS or not _EMAIL_PATTERN.fullmatch(email):
        return "Enter a valid email address."
    return None


def _password_problems(password: str, username: str) -> list[str]:
    if not password:
        return ["This field may not be blank."]
    problems = []
    if len(password) < PASSWORD_MIN_CHARS:
        problems.append(
            f"This password is too short. It must contain at least {PASSWORD_MIN_CHARS} characters."
        )
    if len(password) > PASSWORD_MAX_CHARS:
        problems.append(f"Ensure this field has no more than {PASSWORD_MAX_CHARS} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if not any(char.isprintable() and not char.isspace() for char in password):
        # Eight spaces or eight zero-width characters are no password at all.
        problems.append("This password must contain at least one visible character.")
    if username and password.casefold() == username.casefold():
        problems.append("The password is too similar to the username.")
    return problems
