"""What both dialects' export and import endpoints share: the streamed response, the
import body's decoding, and the documented shapes of Parley's export format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.response import Stream

from application.transfer import ConversationsExport, ImportedRef
from domain.transfer import ExportFormat
from entrypoints.http.bodies import InvalidJson, UnsupportedMediaType

# A ChatGPT export of a few thousand conversations is some tens of MB; one import is at
# most this (split a larger file). The JSON values of a file this size take several
# times it in memory while they are checked, once per request.
IMPORT_MAX_BYTES = 32 * 1024 * 1024

FORMAT_DESCRIPTION = (
    "`json`: Parley's export format, every message of every branch; `markdown`: the "
    "current branch of each conversation, to read."
)

_MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    # Litestar adds "; charset=utf-8" to a text/ type.
    ExportFormat.MARKDOWN: "text/markdown",
}


async def _encoded(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()


def export_response(export: ConversationsExport, export_format: ExportFormat) -> Stream:
    """Sent as it is produced (chunked), as a download."""
    return Stream(
        _encoded(export.chunks),
        media_type=_MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        },
    )


async def import_document(request: Request[Any, Any, Any]) -> object:
    """The body's JSON values (an object or an array; the domain checks the rest)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType()
    raw = await request.body()
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise InvalidJson(f"JSON parse error - {error}") from None
    except RecursionError:
        raise InvalidJson("JSON parse error - nested too deeply.") from None


class ExportedMessage(msgspec.Struct):
    """A message of Parley's export; ``parent_id`` is another message's ``id`` in the
    same conversation (null: a first message). On import: ``id``, ``role``, ``content``
    and ``created_at`` are required; ``status`` ``streaming`` becomes ``interrupted``."""

    id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    model: str | None
    provider: str | None
    created_at: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    reasoning: str | None
    finish_reason: str | None
    error_code: str | None
    image_url: str | None
    on_current_branch: bool


class ExportedConversation(msgspec.Struct):
    """A conversation of Parley's export, with every message of every branch, oldest
    first. On import: ``title`` (at most 200 characters), ``created_at`` and
    ``messages`` are required; ``status`` is ignored (imported conversations arrive
    closed)."""

    id: int
    title: str
    model: str | None
    status: str
    created_at: str
    updated_at: str
    archived_at: str | None
    pinned_at: str | None
    messages: list[ExportedMessage]


class ParleyExport(msgspec.Struct):
    """Parley's export format (``format`` ``parley-conversations``, ``version`` 1); times
    are ISO 8601 in UTC. This is also what ``POST .../import/`` takes (or a ChatGPT
    ``conversations.json`` array)."""

    format: str
    version: int
    exported_at: str
    conversations: list[ExportedConversation]


EXPORT_RESPONSES = {
    200: ResponseSpec(
        data_container=ParleyExport,
        description="The export, streamed as a download: Parley's JSON format "
        "(`format=json`, this schema) or Markdown (`format=markdown`, text/markdown).",
    )
}


@dataclass
class ExportOperation(Operation):
    """The export's documented 200 holds Markdown too (``format=markdown``)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if isinstance(content, dict):
            content["text/markdown; charset=utf-8"] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING)
            )


# A string the server refuses holds NUL; the schema says so (as schema_docs does).
_NO_NUL = Schema(type=OpenAPIType.STRING, pattern="^[^\\u0000]*$")
_IMPORT_BODY = Schema(
    one_of=[
        Schema(
            type=OpenAPIType.OBJECT,
            description="A Parley export (the export's 200 schema).",
            required=["format", "version", "conversations"],
            properties={
                "format": Schema(type=OpenAPIType.STRING, enum=["parley-conversations"]),
                "version": Schema(type=OpenAPIType.INTEGER, enum=[1]),
                "exported_at": _NO_NUL,
                "conversations": Schema(
                    type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)
                ),
            },
        ),
        Schema(
            type=OpenAPIType.ARRAY,
            description="A ChatGPT conversations.json: conversations with a `mapping`.",
            items=Schema(type=OpenAPIType.OBJECT, required=["mapping"]),
        ),
    ]
)


@dataclass
class ImportOperation(Operation):
    """The body is read as it comes (an object or an array, checked in the domain), so
    Litestar documents none: this says what it takes."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_IMPORT_BODY)},
            required=True,
        )


class ImportedConversationOut(msgspec.Struct):
    id: int
    title: str
    messages: int


class ImportOut(msgspec.Struct):
    """The new conversations (closed), in the file's order."""

    imported: int
    conversations: list[ImportedConversationOut]


def import_out(imported: list[ImportedRef]) -> ImportOut:
    return ImportOut(
        imported=len(imported),
        conversations=[
            ImportedConversationOut(id=i.id, title=i.title, messages=i.messages) for i in imported
        ],
    )


def import_responses(error_schema: Any) -> dict[int, ResponseSpec]:
    return {
        413: ResponseSpec(data_container=error_schema, description="The body is over 32 MiB."),
        415: ResponseSpec(data_container=error_schema, description="The body is not JSON."),
    }


IMPORT_DESCRIPTION = (
    "The body is a Parley export (`format` `parley-conversations`, version 1) or a ChatGPT "
    "`conversations.json` (an array), as JSON, at most 32 MiB. The whole file is checked "
    "and stored in one transaction: a bad file stores nothing and is refused with the path "
    "of each bad field (`conversations[3].messages[12].role`, `[0].mapping.<node>.parent`). "
    "Imported conversations get new ids, are yours, and arrive **closed** (reopen one "
    "within the active limit)."
)
