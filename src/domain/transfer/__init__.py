"""Export and import of conversations: Parley's own JSON format (every branch), the
Markdown of a current branch, and ChatGPT's ``conversations.json``.

Pure: rendering takes domain objects and gives text; reading takes the JSON values of a
file (already decoded) and gives what to store, or raises ``InvalidImport`` naming the
path of every bad field (``conversations[3].messages[12].role``).

A module each: ``export`` (the JSON and Markdown renderers), ``imported`` (what an import
yields), ``checks`` (the field checks, problem collection and tree ordering both import
formats share), ``parley_format`` and ``chatgpt_format``; ``parse_import`` below tells
the two formats apart."""

from __future__ import annotations

from domain.transfer.chatgpt_format import parse_chatgpt
from domain.transfer.checks import MAX_IMPORT_MESSAGES, MAX_REPORTED_ERRORS
from domain.transfer.export import (
    FORMAT_NAME,
    FORMAT_VERSION,
    JSON_CONVERSATION_END,
    JSON_DOCUMENT_END,
    ExportFormat,
    conversation_record,
    json_conversation_start,
    json_document_start,
    json_message,
    markdown_conversation_start,
    markdown_message,
    message_record,
)
from domain.transfer.imported import ImportedConversation, ImportedMessage, InvalidImport
from domain.transfer.parley_format import parse_parley

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "JSON_CONVERSATION_END",
    "JSON_DOCUMENT_END",
    "MAX_IMPORT_MESSAGES",
    "MAX_REPORTED_ERRORS",
    "ExportFormat",
    "ImportedConversation",
    "ImportedMessage",
    "InvalidImport",
    "conversation_record",
    "json_conversation_start",
    "json_document_start",
    "json_message",
    "markdown_conversation_start",
    "markdown_message",
    "message_record",
    "parse_chatgpt",
    "parse_import",
    "parse_parley",
]


def parse_import(document: object) -> list[ImportedConversation]:
    """A Parley export (an object with ``"format": "parley-conversations"``) or a
    ChatGPT ``conversations.json`` (an array of conversations)."""
    if isinstance(document, list):
        return parse_chatgpt(document)
    if isinstance(document, dict):
        return parse_parley(document)
    raise InvalidImport(
        {
            "non_field_errors": [
                f'Expected a Parley export (an object with "format": "{FORMAT_NAME}") '
                "or a ChatGPT conversations.json (an array)."
            ]
        }
    )
