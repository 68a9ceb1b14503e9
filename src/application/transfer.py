"""Use cases that take a user's conversations out of Parley and bring them in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from application.ports import Clock, ModelCatalog, UnitOfWork
from domain import transfer
from domain.conversation import Conversation, Message
from domain.errors import NotFound
from domain.transfer import ExportFormat


@dataclass(frozen=True, kw_only=True)
class ExportConversationsRequest:
    owner_id: int
    format: ExportFormat
    # None: every conversation of the owner's.
    conversation_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationsExport:
    """What the export is called and its text, produced as it is read."""

    filename: str
    chunks: AsyncIterator[str]


class ExportConversations:
    """Export one of the user's conversations, or all of them, as Parley's JSON format
    (every message of every branch, with ids, parents, roles, models, usage and times)
    or as Markdown (the current branch only).

    The text is produced while it is sent: conversations are read ``page_size`` at a
    time and each one's messages ``page_size`` at a time, each page in a short
    transaction of its own, so memory stays bounded however many conversations a user
    has (and a long export holds no transaction open). A conversation changed while the
    export runs may appear as it was at any moment of it. Another user's conversation is
    not found."""

    # What one chunk of the response holds before it is sent (characters).
    CHUNK_CHARS = 64 * 1024

    def __init__(self, uow: UnitOfWork, clock: Clock, page_size: int = 200) -> None:
        self._uow = uow
        self._clock = clock
        self._page_size = page_size

    async def __call__(self, command: ExportConversationsRequest) -> ConversationsExport:
        now = self._clock.now()
        suffix = "json" if command.format is ExportFormat.JSON else "md"
        if command.conversation_id is None:
            name = f"parley-conversations-{now:%Y%m%d-%H%M%S}.{suffix}"
        else:
            async with self._uow as uow:
                found = await uow.conversations.get_owned(command.conversation_id, command.owner_id)
            if found is None:
                raise NotFound("Conversation not found.")
            name = f"parley-conversation-{found.id}.{suffix}"
        return ConversationsExport(filename=name, chunks=self._chunks(command, now))

    async def _chunks(
        self, command: ExportConversationsRequest, now: datetime
    ) -> AsyncIterator[str]:
        buffer: list[str] = []
        size = 0
        async for piece in self._pieces(command, now):
            buffer.append(piece)
            size += len(piece)
            if size >= self.CHUNK_CHARS:
                yield "".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer)

    async def _pieces(
        self, command: ExportConversationsRequest, now: datetime
    ) -> AsyncIterator[str]:
        as_json = command.format is ExportFormat.JSON
        if as_json:
            yield transfer.json_document_start(now)
        first = True
        async for conversation in self._conversations(command):
            if as_json:
                yield transfer.json_conversation_start(conversation, first=first)
            else:
                yield transfer.markdown_conversation_start(conversation, first=first)
            first_message = True
            async for message in self._messages(conversation.id):
                if as_json:
                    yield transfer.json_message(message, first=first_message)
                    first_message = False
                elif message.on_branch:
                    yield transfer.markdown_message(message)
            if as_json:
                yield transfer.JSON_CONVERSATION_END
            first = False
        if as_json:
            yield transfer.JSON_DOCUMENT_END

    async def _conversations(
        self, command: ExportConversationsRequest
    ) -> AsyncIterator[Conversation]:
        if command.conversation_id is not None:
            async with self._uow as uow:
                found = await uow.conversations.get_owned(command.conversation_id, command.owner_id)
            if found is not None:  # deleted since the export began: an empty export
                yield found
            return
        after = 0
        while True:
            async with self._uow as uow:
                page = await uow.conversations.owned_after(command.owner_id, after, self._page_size)
            for conversation in page:
                yield conversation
            if len(page) < self._page_size:
                return
            after = page[-1].id

    async def _messages(self, conversation_id: int) -> AsyncIterator[Message]:
        after = 0
        while True:
            async with self._uow as uow:
                page = await uow.messages.tree(
                    conversation_id, after_id=after, limit=self._page_size
                )
            for message in page:
                yield message
            if len(page) < self._page_size:
                return
            after = page[-1].id


@dataclass(frozen=True, kw_only=True)
class ImportConversationsRequest:
    owner_id: int
    # The file's JSON values, decoded.
    document: object


@dataclass(frozen=True, kw_only=True)
class ImportedRef:
    id: int
    title: str
    messages: int


class ImportConversations:
    """Import a Parley export or a ChatGPT ``conversations.json`` as new conversations
    of the importer's, with new ids (parents follow).

    The whole file is checked first and stored in one transaction: a bad file stores
    nothing, and is refused naming the path of each bad field. Imported conversations
    arrive closed, so they never count against the active limit (the owner reopens one
    within the limit); archived and pinned times are kept. A conversation's model is
    kept only if this Parley serves it (its messages keep theirs). Imported messages are
    history: the message length limit is not applied to them (the body size limit and
    ``MAX_IMPORT_MESSAGES`` bound a file), and they count against no budget. Every
    branch is kept; the file's current branch is the current branch."""

    def __init__(self, uow: UnitOfWork, catalog: ModelCatalog) -> None:
        self._uow = uow
        self._catalog = catalog

    async def __call__(self, command: ImportConversationsRequest) -> list[ImportedRef]:
        conversations = transfer.parse_import(command.document)
        imported: list[ImportedRef] = []
        async with self._uow as uow:
            for conversation in conversations:
                model = conversation.model
                if model is not None and self._catalog.get(model) is None:
                    model = None
                stored = await uow.conversations.add(
                    conversation.to_store(command.owner_id, model=model)
                )
                await uow.messages.add_tree(
                    [m.to_store(stored.id) for m in conversation.messages],
                    [m.parent for m in conversation.messages],
                )
                imported.append(
                    ImportedRef(
                        id=stored.id, title=stored.title, messages=len(conversation.messages)
                    )
                )
            await uow.commit()
        return imported
