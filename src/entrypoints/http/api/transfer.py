"""``/api/conversations/export/``, ``.../{id}/export/`` and ``.../import/`` (DRF style)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from application.transfer import (
    ExportConversations,
    ExportConversationsRequest,
    ImportConversations,
    ImportConversationsRequest,
)
from domain.transfer import ExportFormat
from domain.users import User
from entrypoints.http.dialects import ApiError
from entrypoints.http.transfer import (
    EXPORT_RESPONSES,
    FORMAT_DESCRIPTION,
    IMPORT_DESCRIPTION,
    IMPORT_MAX_BYTES,
    ExportOperation,
    ImportOperation,
    ImportOut,
    export_response,
    import_document,
    import_out,
    import_responses,
)

Format = Annotated[ExportFormat, QueryParameter(name="format", description=FORMAT_DESCRIPTION)]


class TransferController(Controller):
    path = "/conversations"
    tags = ["conversations (/api)"]

    @get(
        "/export/",
        operation_id="api_export_conversations",
        responses=EXPORT_RESPONSES,
        operation_class=ExportOperation,
    )
    async def export_all(
        self,
        user: NamedDependency[User],
        export_conversations: NamedDependency[ExportConversations],
        export_format: Format = ExportFormat.JSON,
    ) -> Stream:
        """All your conversations as one download, streamed."""
        export = await export_conversations(
            ExportConversationsRequest(owner_id=user.id, format=export_format)
        )
        return export_response(export, export_format)

    @get(
        "/{conversation_id:int}/export/",
        operation_id="api_export_conversation",
        responses=EXPORT_RESPONSES,
        operation_class=ExportOperation,
    )
    async def export_one(
        self,
        conversation_id: FromPath[int],
        user: NamedDependency[User],
        export_conversations: NamedDependency[ExportConversations],
        export_format: Format = ExportFormat.JSON,
    ) -> Stream:
        """One of your conversations as a download."""
        export = await export_conversations(
            ExportConversationsRequest(
                owner_id=user.id, format=export_format, conversation_id=conversation_id
            )
        )
        return export_response(export, export_format)

    @post(
        "/import/",
        operation_id="api_import_conversations",
        status_code=201,
        request_max_body_size=IMPORT_MAX_BYTES,
        description=IMPORT_DESCRIPTION,
        operation_class=ImportOperation,
        responses=import_responses(ApiError),
    )
    async def import_conversations(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        import_conversations: NamedDependency[ImportConversations],
    ) -> ImportOut:
        """Import a Parley export or a ChatGPT conversations.json."""
        document = await import_document(request)
        imported = await import_conversations(
            ImportConversationsRequest(owner_id=user.id, document=document)
        )
        return import_out(imported)
