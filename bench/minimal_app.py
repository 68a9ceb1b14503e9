"""The floor: the least a chat endpoint can do on Parley's stack.

Same server (uvicorn, same loop and HTTP parser choice), same framework (Litestar with a
msgspec body), SQLAlchemy with the aiosqlite driver as shipped (``--sqlite-driver
parley``: Parley's own inline driver instead) and SQLite pragmas (WAL,
synchronous=NORMAL), same outbound client (Parley's own:
``adapters.llm.transport.provider_http_client``) and the same upstream. Per request it
decodes the same body as ``/api/v1/messages/chat/``, commits the user's message row,
calls the model, commits the reply row (the same two rows, in the same columns, as
Parley's ``messages`` table) and answers with the same body shape. Streaming
(``"stream": true``) forwards the deltas as the same SSE events.

What it leaves out is what Parley adds: authentication, ownership and quota checks,
chat settings, history, retries/fallbacks, the access log. SQLite writes go through one
pooled connection, i.e. serialised in-process by SQLAlchemy's pool rather than by
SQLite's busy handler.

Usage: ``python bench/minimal_app.py --port P --database-url URL --upstream URL``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import uvicorn
from litestar import Litestar, Response, post
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    insert,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.llm.transport import provider_http_client
from adapters.persistence.inline_sqlite import inline_connector

metadata = MetaData()
messages = Table(
    "bench_floor_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", String(100), nullable=True),
    Column("provider", String(50), nullable=True),
    Column("image_url", Text, nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("finish_reason", String(50), nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error_code", String(50), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_bench_floor_messages_conversation_id_id", "conversation_id", "id"),
)


class ChatIn(msgspec.Struct):
    message: str
    conversation_id: int | None = None
    model: str | None = None
    image_url: str | None = None
    stream: bool = False


class MessageOut(msgspec.Struct):
    id: int
    conversation: int
    role: str
    content: str
    created_at: datetime
    status: str
    model: str | None
    image_url: str | None


class ChatOut(msgspec.Struct):
    conversation_id: int
    user_message: MessageOut
    ai_message: MessageOut
    status: str


_encode = msgspec.json.Encoder().encode


def make_engine(url: str, sqlite_driver: str = "aiosqlite") -> AsyncEngine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url)
    if sqlite_driver == "parley":
        # Parley's own driver (statements on the loop's thread, async busy retry), in
        # autocommit: each of the floor's transactions is its one INSERT.
        database = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            async_creator=inline_connector(database, 15),
        )
    else:
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args={"timeout": 15}
        )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if sqlite_driver != "parley":
            cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    return engine


def create_app(
    database_url: str, upstream: str, model: str, sqlite_driver: str = "aiosqlite"
) -> Litestar:
    engine = make_engine(database_url, sqlite_driver)
    http = provider_http_client(httpx.Timeout(60.0, connect=5.0))
    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer bench"}

    def now() -> datetime:
        return datetime.now(UTC)

    async def store(row: dict[str, Any]) -> int:
        async with engine.begin() as connection:
            result = await connection.execute(
                insert(messages).values(**row).returning(messages.c.id)
            )
            return int(result.scalar_one())

    def user_row(data: ChatIn) -> dict[str, Any]:
        return {
            "conversation_id": data.conversation_id or 0,
            "role": "user",
            "content": data.message,
            "status": "completed",
            "image_url": data.image_url,
            "created_at": now(),
        }

    def out(row: dict[str, Any], row_id: int) -> MessageOut:
        return MessageOut(
            id=row_id,
            conversation=row["conversation_id"],
            role=row["role"],
            content=row["content"],
            created_at=row["created_at"],
            status=row["status"],
            model=row.get("model"),
            image_url=row.get("image_url"),
        )

    def upstream_body(data: ChatIn, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": data.message}],
            "temperature": 0.7,
            "max_tokens": 1024,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def reply_row(data: ChatIn, text: str, usage: dict[str, Any], started: float) -> dict[str, Any]:
        return {
            "conversation_id": data.conversation_id or 0,
            "role": "assistant",
            "content": text,
            "status": "completed",
            "model": model,
            "provider": "local",
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "finish_reason": "stop",
            "latency_ms": round((time.perf_counter() - started) * 1000),
            "created_at": now(),
        }

    @post("/chat/", status_code=201)
    async def chat(data: ChatIn) -> Response[Any]:
        mine = user_row(data)
        user_id = await store(mine)
        if data.stream:
            return ServerSentEvent(events(data, mine, user_id), status_code=200)
        started = time.perf_counter()
        response = await http.post(url, json=upstream_body(data, stream=False), headers=headers)
        response.raise_for_status()
        document = response.json()
        text = document["choices"][0]["message"]["content"]
        reply = reply_row(data, text, document.get("usage") or {}, started)
        reply_id = await store(reply)
        return Response(
            ChatOut(
                conversation_id=mine["conversation_id"],
                user_message=out(mine, user_id),
                ai_message=out(reply, reply_id),
                status="completed",
            ),
            status_code=201,
        )

    async def events(
        data: ChatIn, mine: dict[str, Any], user_id: int
    ) -> AsyncIterator[ServerSentEventMessage]:
        started = time.perf_counter()
        parts: list[str] = []
        usage: dict[str, Any] = {}
        async with http.stream(
            "POST", url, json=upstream_body(data, stream=True), headers=headers
        ) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        parts.append(piece)
                        yield ServerSentEventMessage(
                            event="delta", data=_encode({"text": piece}).decode()
                        )
        reply = reply_row(data, "".join(parts), usage, started)
        reply_id = await store(reply)
        done = {
            "conversation_id": mine["conversation_id"],
            "user_message": msgspec.to_builtins(out(mine, user_id)),
            "ai_message": msgspec.to_builtins(out(reply, reply_id)),
            "status": "completed",
        }
        yield ServerSentEventMessage(event="done", data=_encode(done).decode())

    async def create_tables() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def release() -> None:
        await http.aclose()
        await engine.dispose()

    return Litestar(
        route_handlers=[chat],
        on_startup=[create_tables],
        on_shutdown=[release],
        openapi_config=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="The minimal-stack floor for /chat/.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--upstream", required=True, help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument(
        "--sqlite-driver",
        choices=["aiosqlite", "parley"],
        default="aiosqlite",
        help="aiosqlite as shipped (the floor), or Parley's inline driver",
    )
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.database_url, args.upstream, args.model, args.sqlite_driver),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
