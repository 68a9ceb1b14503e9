"""``python -m bench.floor --port P --database-url URL --upstream URL``: the floor, the least
a chat endpoint can do on Parley's stack.

Same server (uvicorn), framework (Litestar, msgspec body), database engine (Parley's own
``adapters.persistence.database.create_engine``: on SQLite its driver, pragmas and pool
of one), outbound client (``adapters.llm.transport.provider_http_client``) and upstream.
Per request it decodes the body ``/api/v1/messages/chat/`` takes, commits the user's
message row, calls the model, commits the reply row (the columns of Parley's
``messages``) and answers the same body shape; ``"stream": true`` forwards the deltas
as the same SSE events. What it leaves out is what Parley adds: authentication,
ownership and quota checks, chat settings, history, retries and fallbacks.
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
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert

from adapters.llm.transport import provider_http_client
from adapters.persistence.database import create_engine

metadata = MetaData()
messages = Table(
    "bench_floor_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Integer, nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", String(100)),
    Column("provider", String(50)),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("finish_reason", String(50)),
    Column("latency_ms", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


MODEL = "fake-model"


class ChatIn(msgspec.Struct):
    message: str
    conversation_id: int = 0
    model: str | None = None
    stream: bool = False


class MessageOut(msgspec.Struct):
    id: int
    conversation: int
    role: str
    content: str
    created_at: datetime
    status: str
    model: str | None


def upstream_body(data: ChatIn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": data.message}],
        "temperature": 0.7,
        "max_tokens": 1024,
    }
    if data.stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def reply(data: ChatIn, content: str, usage: dict[str, Any], started: float) -> dict[str, Any]:
    return {
        "conversation_id": data.conversation_id,
        "role": "assistant",
        "content": content,
        "status": "completed",
        "model": MODEL,
        "provider": "local",
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "finish_reason": "stop",
        "latency_ms": round((time.perf_counter() - started) * 1000),
    }


def answer(user: MessageOut, ai: MessageOut) -> dict[str, Any]:
    return {
        "conversation_id": user.conversation,
        "user_message": msgspec.to_builtins(user),
        "ai_message": msgspec.to_builtins(ai),
        "status": "completed",
    }


def create_app(database_url: str, upstream: str) -> Litestar:
    engine = create_engine(database_url)
    http = provider_http_client(httpx.Timeout(60.0, connect=5.0))
    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer bench"}
    encode = msgspec.json.Encoder().encode

    async def store(row: dict[str, Any]) -> MessageOut:
        row["created_at"] = datetime.now(UTC)
        async with engine.begin() as connection:
            result = await connection.execute(
                insert(messages).values(**row).returning(messages.c.id)
            )
            row_id = int(result.scalar_one())
        return MessageOut(
            row_id,
            row["conversation_id"],
            row["role"],
            row["content"],
            row["created_at"],
            row["status"],
            row.get("model"),
        )

    @post("/chat/", status_code=201)
    async def chat(data: ChatIn) -> Response[Any]:
        user = await store(
            {"conversation_id": data.conversation_id, "role": "user", "content": data.message}
            | {"status": "completed"}
        )
        if data.stream:
            return ServerSentEvent(events(data, user), status_code=200)
        started = time.perf_counter()
        response = await http.post(url, json=upstream_body(data), headers=headers)
        response.raise_for_status()
        document = response.json()
        content = document["choices"][0]["message"]["content"]
        ai = await store(reply(data, content, document.get("usage") or {}, started))
        return Response(answer(user, ai), status_code=201)

    async def events(data: ChatIn, user: MessageOut) -> AsyncIterator[ServerSentEventMessage]:
        started = time.perf_counter()
        parts: list[str] = []
        usage: dict[str, Any] = {}
        async with http.stream("POST", url, json=upstream_body(data), headers=headers) as stream:
            async for line in stream.aiter_lines():
                payload = line[5:].strip() if line.startswith("data:") else ""
                if payload == "[DONE]":
                    break
                if not payload:
                    continue
                chunk = json.loads(payload)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    if piece := (choice.get("delta") or {}).get("content"):
                        parts.append(piece)
                        yield ServerSentEventMessage(encode({"text": piece}).decode(), "delta")
        ai = await store(reply(data, "".join(parts), usage, started))
        yield ServerSentEventMessage(encode(answer(user, ai)).decode(), "done")

    async def create_tables() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def release() -> None:
        await http.aclose()
        await engine.dispose()

    return Litestar([chat], on_startup=[create_tables], on_shutdown=[release], openapi_config=None)


def main() -> None:
    parser = argparse.ArgumentParser(description="The minimal-stack floor for /chat/.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--upstream", required=True, help="OpenAI-compatible base URL (…/v1)")
    args = parser.parse_args()
    app = create_app(args.database_url, args.upstream)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
