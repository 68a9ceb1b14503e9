"""Domain errors: each carries a stable machine ``code`` and a default human message.

The HTTP edge maps each class to a status code in one table; nothing else inspects them.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    default_message = "Not found."


class ModelNotFound(NotFound):
    """A model named by id that no configured provider serves now."""

    code = "model_not_found"
    default_message = "The model does not exist or you do not have access to it."


class PermissionDenied(DomainError):
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class AuthenticationFailed(DomainError):
    code = "authentication_failed"
    default_message = "Incorrect authentication credentials."


class NotAuthenticated(AuthenticationFailed):
    code = "not_authenticated"
    default_message = "Authentication credentials were not provided."


class ConversationClosed(DomainError):
    code = "conversation_closed"
    default_message = "This conversation is closed; reopen it to send messages."


class ConversationArchived(DomainError):
    code = "conversation_archived"
    default_message = "This conversation is archived; unarchive it to send messages."


class ActiveConversationLimit(DomainError):
    code = "active_conversation_limit"
    default_message = "You have reached the limit of active conversations; close one first."


class InvalidInput(DomainError):
    """One or more fields failed validation; ``field_errors`` lists every failing field."""

    code = "invalid"
    default_message = "Invalid input."

    def __init__(self, field_errors: dict[str, list[str]], message: str | None = None) -> None:
        self.field_errors = field_errors
        super().__init__(message or _summarise(field_errors) or self.default_message)


class MessageTooLong(InvalidInput):
    code = "message_too_long"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            {"message": [f"Ensure this field has no more than {limit} characters."]},
        )


class TitleTooLong(InvalidInput):
    code = "title_too_long"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__({"title": [f"Ensure this field has no more than {limit} characters."]})


def _summarise(field_errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in field_errors.items())


class UsernameTaken(InvalidInput):
    """Well-formed, but the username belongs to an existing account."""

    code = "username_taken"

    def __init__(self) -> None:
        super().__init__({"username": ["A user with that username already exists."]})
