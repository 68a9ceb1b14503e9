"""``python -m bench.floor --port P --database-url URL --upstream URL``: the floor, the
minimal persisted chat turn; ``python -m bench.floor --port P --hello``: a bare Litestar
hello-world on the same server, to show what the framework and server alone cost.

It imports nothing of Parley's. Litestar + msgspec, SQLAlchemy Core on aiosqlite (one
pooled connection, WAL, synchronous=NORMAL) or, given a PostgreSQL URL, the same code on
asyncpg; one shared aiohttp session to the upstream; uvicorn on uvloop + httptools (where
installed: the bench extra). It seeds its own API keys and conversations at start-up.

``POST /api/v1/messages/chat/`` takes Parley's body and bearer key and, per request: looks
the key's digest up (one SELECT), reads the conversation's newest 49 messages, checking
its owner (one SELECT), commits the user's message, sends history + message upstream,
commits the reply, and answers Parley's body (201). Streamed (``"stream": true``): the
user's message and the reply's row are committed first, then Parley's SSE events
(``reply``, ``delta``..., ``done``), the reply committed before ``done``. What it leaves
out is what Parley adds beyond these guarantees: sessions and JWTs, quotas and budgets,
chat settings, retries and fallbacks, idempotency, logging and metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

CHAT = "/api/v1/messages/chat/"
MODEL = "fake-model"
HISTORY = 49  # earlier messages sent with the new one (Parley's default budget: 50 in all)
KEYS = 64

metadata = MetaData()
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("user_id", Integer, nullable=False),
)
conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, nullable=False),
)
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", String(100)),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("messages_by_conversation", "conversation_id", "id"),
)

KEY_OWNER = select(api_keys.c.user_id).where(api_keys.c.digest == bindparam("digest"))
MINE = (conversations.c.id == bindparam("conversation")) & (
    conversations.c.user_id == bindparam("owner")
)
NEWEST = (
    select(messages.c.role, messages.c.content)
    .join(conversations, conversations.c.id == messages.c.conversation_id)
    .where(messages.c.conversation_id == bindparam("conversation"), MINE)
    .order_by(messages.c.id.desc())
    .limit(HISTORY)
)
OWNED = select(conversations.c.id).where(MINE)
ADD_MESSAGE = insert(messages).returning(messages.c.id)


def key(user: int) -> str:
    """The bearer key the floor seeds for user ``user`` (0-based)."""
    return f"floor-key-{user}"


def conversation(user: int, *, stream: bool) -> int:
    """User ``user``'s conversation for chat, and another for streams."""
    return 2 * user + (2 if stream else 1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ChatIn(msgspec.Struct):
    message: str
    conversation_id: int
    stream: bool = False


class MessageOut(msgspec.Struct, omit_defaults=True):
    id: int
    conversation: int
    role: str
    content: str
    created_at: datetime
    status: str
    model: str | None
    image_url: str | None = None
    stream_url: str | msgspec.UnsetType = msgspec.UNSET
    cancel_url: str | msgspec.UnsetType = msgspec.UNSET


class ChatOut(msgspec.Struct):
    conversation_id: int
    user_message: MessageOut
    ai_message: MessageOut
    status: str


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Said(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Said | None = None
    delta: Said | None = None


class Completion(msgspec.Struct):
    choices: list[Choice] = []
    usage: Usage | None = None


class Turn(msgspec.Struct):
    """What the first transaction leaves: the stored messages and what to send upstream."""

    user: MessageOut
    upstream: bytes
    reply: MessageOut | None = None


def create_engine(url: str) -> AsyncEngine:
    if not url.startswith("sqlite"):
        # A fixed pool: connections opened and closed under load would cost both sides.
        return create_async_engine(
            url, pool_size=10, max_overflow=0, pool_timeout=60, pool_reset_on_return=None
        )
    # One connection: SQLite has one writer, so requests queue in the pool, not on its lock.
    engine = create_async_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=60, pool_reset_on_return=None
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


async def seed(engine: AsyncEngine, keys: int) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(
            insert(api_keys), [{"digest": digest(key(u)), "user_id": u + 1} for u in range(keys)]
        )
        rows = [
            {"id": conversation(u, stream=s), "user_id": u + 1}
            for u in range(keys)
            for s in (False, True)
        ]
        await connection.execute(insert(conversations), rows)


ENCODE = msgspec.json.Encoder().encode
DECODE_COMPLETION = msgspec.json.Decoder(Completion).decode


async def store(
    connection: AsyncConnection,
    conversation_id: int,
    role: str,
    content: str,
    status: str,
    usage: Usage | None = None,
) -> MessageOut:
    now = datetime.now(UTC)
    row = {"conversation_id": conversation_id, "role": role, "content": content}
    row |= {"status": status, "model": MODEL, "created_at": now}
    row |= msgspec.to_builtins(usage or Usage())
    message_id = int((await connection.execute(ADD_MESSAGE, row)).scalar_one())
    return MessageOut(message_id, conversation_id, role, content, now, status, MODEL)


def sse(name: str, data: Any, count: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(ENCODE(data).decode(), name, str(count))


class Floor:
    def __init__(self, database_url: str, upstream: str, keys: int) -> None:
        self.engine = create_engine(database_url)
        self.keys = keys
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        self.sessions: list[aiohttp.ClientSession] = []  # made in the server's loop

    async def start(self) -> None:
        await seed(self.engine, self.keys)
        self.sessions.append(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)))

    async def stop(self) -> None:
        for session in self.sessions:
            await session.close()
        await self.engine.dispose()

    async def begin_turn(self, token: str, data: ChatIn) -> Turn:
        """The first transaction: the key, the history, the user's message (and, streamed,
        the reply's row)."""
        async with self.engine.begin() as connection:
            owner = await connection.scalar(KEY_OWNER, {"digest": digest(token)})
            if owner is None:
                raise NotAuthorizedException("Invalid API key.")
            mine = {"conversation": data.conversation_id, "owner": owner}
            earlier = (await connection.execute(NEWEST, mine)).all()
            if not earlier and await connection.scalar(OWNED, mine) is None:
                raise NotFoundException("No such conversation.")
            said = [{"role": role, "content": content} for role, content in reversed(earlier)]
            said.append({"role": "user", "content": data.message})
            body: dict[str, Any] = {"model": MODEL, "messages": said}
            body |= {"temperature": 0.7, "max_tokens": 1024}
            if data.stream:
                body |= {"stream": True, "stream_options": {"include_usage": True}}
            user = await store(connection, data.conversation_id, "user", data.message, "completed")
            reply = None
            if data.stream:  # committed with the question, so a reader sees it being written
                reply = await store(connection, data.conversation_id, "assistant", "", "streaming")
        return Turn(user, ENCODE(body), reply)

    async def chat(self, token: str, data: ChatIn) -> Response[Any]:
        turn = await self.begin_turn(token, data)
        if turn.reply is not None:
            return ServerSentEvent(self.events(turn, turn.reply), status_code=200)
        async with self.sessions[0].post(
            self.url, data=turn.upstream, headers=self.headers
        ) as response:
            if response.status != 200:
                raise HTTPException(status_code=502, detail=f"upstream {response.status}")
            document = DECODE_COMPLETION(await response.read())
        said = document.choices[0].message if document.choices else None
        content = said.content if said is not None and said.content else ""
        async with self.engine.begin() as connection:
            ai = await store(
                connection, data.conversation_id, "assistant", content, "completed", document.usage
            )
        return Response(ChatOut(ai.conversation, turn.user, ai, "completed"), status_code=201)

    async def events(self, turn: Turn, reply: MessageOut) -> AsyncIterator[ServerSentEventMessage]:
        """Parley's events: ``reply`` (the stored rows), a ``delta`` per piece of text,
        ``done`` once the reply is committed."""
        links = {"stream_url": f"/api/v1/messages/{reply.id}/stream/"}
        links["cancel_url"] = f"/api/v1/messages/{reply.id}/cancel/"
        reply.stream_url, reply.cancel_url = links.values()
        started = msgspec.to_builtins(ChatOut(reply.conversation, turn.user, reply, "streaming"))
        yield sse("reply", started | links, 0)
        parts: list[str] = []
        count = 0
        usage = Usage()
        async with self.sessions[0].post(
            self.url, data=turn.upstream, headers=self.headers
        ) as response:
            async for line in response.content:
                payload = line[6:].strip() if line.startswith(b"data: ") else b""
                if payload == b"[DONE]":
                    break
                chunk = DECODE_COMPLETION(payload) if payload else Completion()
                usage = chunk.usage or usage
                for piece in (c.delta.content for c in chunk.choices if c.delta is not None):
                    if piece:
                        parts.append(piece)
                        count += len(piece)
                        yield sse("delta", {"text": piece}, count)
        done = await self.finish(reply, "".join(parts), usage)
        body = msgspec.to_builtins(ChatOut(reply.conversation, turn.user, done, "completed"))
        total = usage.prompt_tokens + usage.completion_tokens
        body["usage"] = msgspec.to_builtins(usage) | {"total_tokens": total}
        yield sse("done", body, count)

    async def finish(self, reply: MessageOut, content: str, usage: Usage) -> MessageOut:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(messages).where(messages.c.id == reply.id),
                {"content": content, "status": "completed"} | msgspec.to_builtins(usage),
            )
        return MessageOut(
            reply.id, reply.conversation, "assistant", content, reply.created_at, "completed", MODEL
        )


def create_app(database_url: str, upstream: str, keys: int = KEYS) -> Litestar:
    floor = Floor(database_url, upstream, keys)

    @post(CHAT, status_code=201)
    async def chat(request: Request[Any, Any, Any], data: ChatIn) -> Response[Any]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return await floor.chat(token, data)

    return Litestar([chat], on_startup=[floor.start], on_shutdown=[floor.stop], openapi_config=None)


def create_hello() -> Litestar:
    @get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return Litestar([hello], openapi_config=None)


def server_stack() -> dict[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop + httptools where installed."""
    fast = all(importlib.util.find_spec(name) for name in ("uvloop", "httptools"))
    return {"loop": "uvloop", "http": "httptools"} if fast else {"loop": "asyncio", "http": "h11"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hello", action="store_true", help="the bare hello-world instead")
    parser.add_argument("--database-url")
    parser.add_argument("--upstream", help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--keys", type=int, default=KEYS, help="users to seed, one key each")
    args = parser.parse_args()
    if args.hello:
        app = create_hello()
    elif args.database_url and args.upstream:
        app = create_app(args.database_url, args.upstream, args.keys)
    else:
        parser.error("--database-url and --upstream, or --hello")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        **server_stack(),  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
