"""Anthropic Messages API (``POST /v1/messages``): request validation, answers and errors,
rendered from the fixtures in ``tests/fixtures/providers/anthropic``."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.fixtures import load_fixture
from tests.fakes.wire_common import (
    Answer,
    Call,
    HttpError,
    Lookup,
    RecordedRequest,
    Rejected,
    StreamPlan,
    dumps,
    header_items,
    number,
    pieces,
    retry_headers,
)

__all__ = ["AnthropicWire"]

TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "STOP": "end_turn",
    "length": "max_tokens",
    "MAX_TOKENS": "max_tokens",
    "content_filter": "refusal",
    "SAFETY": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_RATE_LIMIT = load_fixture("anthropic/error_rate_limit.json")
_OVERLOADED = load_fixture("anthropic/error_overloaded.json")
_CREDIT = load_fixture("anthropic/error_credit_balance.json")
_MAX_TOKENS_REQUIRED = load_fixture("anthropic/error_max_tokens_required.json")
_DEFAULT_MESSAGES = {
    400: "Invalid request",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: _RATE_LIMIT.body["error"]["message"],
    500: "Internal server error",
    529: "Overloaded",
}
_MESSAGE = load_fixture("anthropic/message.json").body
_REFUSAL = load_fixture("anthropic/refusal.json").body
_STREAM = load_fixture("anthropic/stream.sse").payloads()
_THINKING = load_fixture("anthropic/stream_thinking.sse").payloads()
_SIGNATURE = next(
    p["delta"]["signature"]
    for p in _THINKING
    if p["type"] == "content_block_delta" and p["delta"]["type"] == "signature_delta"
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def error_body(status: int, message: str | None, kind: str | None = None) -> bytes:
    return dumps(
        {
            "type": "error",
            "error": {
                "type": kind or ERROR_TYPES.get(status, "api_error"),
                "message": message or _DEFAULT_MESSAGES.get(status, "Request failed"),
            },
            "request_id": "req_fake",
        }
    )


def _envelope(request: RecordedRequest) -> tuple[dict[str, Any], str, int, list[Any]]:
    """The request's body, model, max_tokens and messages, each checked as the API does."""
    if not request.headers.get("anthropic-version"):
        raise _invalid("anthropic-version: header is required")
    body = request.json
    if not isinstance(body, dict):
        raise _invalid("The request body is not valid JSON.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    if "max_tokens" not in body:
        raise Rejected(HttpError(400, dumps(_MAX_TOKENS_REQUIRED.body)))
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if "messages" not in body:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    return body, model, max_tokens, messages


def _invalid(message: str) -> Rejected:
    return Rejected(HttpError(400, error_body(400, message)))


def _event(name: str, payload: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


class AnthropicWire:
    not_json = b'{"id": "msg_broken", "type": "message", "cont'

    # -- errors --

    def http_error(
        self,
        flavour: str,
        status: int,
        message: str | None,
        code: str | None = None,
        *,
        model: str = "",
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        retry_delay: str | None = None,
    ) -> HttpError:
        headers = retry_headers(retry_after, retry_after_ms)
        if status == 429:
            headers |= {k: v for k, v in _RATE_LIMIT.headers.items() if k.startswith("anthropic-")}
        headers["request-id"] = "req_fake"
        return HttpError(status, error_body(status, message, code), header_items(headers))

    def quota_exhausted(self, call: Call) -> HttpError:
        return HttpError(400, dumps(_CREDIT.body))

    def overloaded(self, call: Call) -> HttpError:
        return HttpError(529, dumps(_OVERLOADED.body), header_items(_OVERLOADED.headers))

    @staticmethod
    def _stream_error(kind: str) -> tuple[int, str]:
        return {
            "overloaded": (529, "overloaded_error"),
            "rate_limit": (429, "rate_limit_error"),
        }.get(kind, (500, "api_error"))

    def stream_error_event(self, call: Call, message: str | None, kind: str) -> bytes:
        status, kind_name = self._stream_error(kind)
        payload = {
            "type": "error",
            "error": {"type": kind_name, "message": message or _DEFAULT_MESSAGES[status]},
        }
        return _event("error", payload)

    def stream_error_http(self, call: Call, message: str | None, kind: str) -> HttpError:
        status, kind_name = self._stream_error(kind)
        return HttpError(status, error_body(status, message, kind_name))

    def malformed(self, call: Call, payload: bytes) -> tuple[bytes, list[bytes]]:
        return payload, [b"event: message_start\ndata: " + payload + b"\n\n"]

    # -- requests --

    def authorise(self, flavour: str, request: RecordedRequest, api_key: str | None) -> None:
        if api_key is None:
            return
        # The x-api-key header, or (what the official SDK sends since 2026, API version
        # 2026-10-21) ``Authorization: Bearer <key>``.
        key = request.headers.get("x-api-key")
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if key == api_key or (scheme.lower() == "bearer" and bearer == api_key):
            return
        message = "x-api-key header is required" if not (key or bearer) else "invalid x-api-key"
        raise Rejected(HttpError(401, error_body(401, message)))

    def parse(
        self, flavour: str, request: RecordedRequest, lookup: Lookup, serial: int, **extra: str
    ) -> Call:
        body, model, max_tokens, messages = _envelope(request)
        info = lookup("anthropic", model)
        if info is None:
            raise Rejected(HttpError(404, error_body(404, f"model: {model}")))
        if max_tokens > info["max_output"]:
            raise _invalid(
                f"max_tokens: {max_tokens} > {info['max_output']}, which is the maximum allowed "
                f"number of output tokens for {model}"
            )

        prompt_words, last_user = self._prompt(body.get("system"), messages)
        thinking = body.get("thinking")
        thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        self._check_sampling(body, thinking_on, max_tokens)
        if info.get("fixed_sampling"):
            # Opus 4.7 and later, Sonnet 5 and later (the Sonnet 5 migration guide): any
            # sampling parameter is a 400. Wording approximated.
            for name in ("temperature", "top_p", "top_k"):
                if name in body:
                    raise _invalid(
                        f"{name}: is not supported on {model}; remove temperature, top_p and top_k"
                    )
        return Call(
            flavour="anthropic",
            model=model,
            stream=body.get("stream") is True,
            last_user_text=last_user,
            prompt_words=prompt_words,
            response_id=f"msg_fake{serial:020d}",
            show_reasoning=thinking_on,
        )

    def _prompt(self, system: Any, messages: list[Any]) -> tuple[int, str]:
        """The prompt's word count and the last user message's text."""
        prompt_words = len(self._text("system", system).split())
        last_user = ""
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise _invalid(f"messages.{i}: Input should be a valid dictionary")
            role = message.get("role")
            if role == "system":
                raise _invalid(
                    'messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.'
                )
            if role not in ("user", "assistant"):
                raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = message.get("content")
            if content in ("", []) and not (role == "assistant" and i == len(messages) - 1):
                raise _invalid(
                    f"messages.{i}: all messages must have non-empty content except for the "
                    "optional final assistant message"
                )
            text = self._text(f"messages.{i}", content)
            prompt_words += len(text.split())
            if role == "user":
                last_user = text
        return prompt_words, last_user

    @staticmethod
    def _text(where: str, content: Any) -> str:
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise _invalid(f"{where}.content: Input should be a valid list")
        texts = []
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                raise _invalid(f"{where}.content.{j}: Input should be a valid dictionary")
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise _invalid(f"{where}.content.{j}.text.text: Field required")
                if not text:
                    scope = "system" if where == "system" else "messages"
                    raise _invalid(f"{scope}: text content blocks must be non-empty")
                if not text.strip():
                    scope = "system" if where == "system" else "messages"
                    raise _invalid(f"{scope}: text content blocks must contain non-whitespace text")
                texts.append(text)
            elif kind == "image":
                AnthropicWire._check_image(f"{where}.content.{j}", block.get("source"))
        return " ".join(texts)

    @staticmethod
    def _check_image(where: str, source: Any) -> None:
        if not isinstance(source, dict):
            raise _invalid(f"{where}.image.source: Field required")
        kind = source.get("type")
        if kind == "base64":
            if source.get("media_type") not in _IMAGE_TYPES:
                raise _invalid(
                    f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', "
                    "'image/png', 'image/gif' or 'image/webp'"
                )
            if not isinstance(source.get("data"), str) or not source["data"]:
                raise _invalid(f"{where}.image.source.base64.data: Field required")
        elif kind == "url":
            url = source.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _invalid(f"{where}.image.source.url.url: Input should be a valid URL")
        else:
            raise _invalid(
                f"{where}.image.source: Input tag '{kind}' found using 'type' does not match any "
                "of the expected tags: 'base64', 'url', 'file'"
            )

    @staticmethod
    def _check_sampling(body: dict[str, Any], thinking_on: bool, max_tokens: int) -> None:
        for name in ("temperature", "top_p"):
            value = body.get(name)
            if value is None:
                continue
            if not number(value):
                raise _invalid(f"{name}: Input should be a valid number")
            if not 0 <= value <= 1:
                raise _invalid(f"{name}: range: 0..1")
        if thinking_on:
            temperature = body.get("temperature")
            if temperature is not None and temperature != 1:
                raise _invalid(
                    "`temperature` may only be set to 1 when thinking is enabled. Please "
                    "consult our documentation at "
                    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                )
            budget = body["thinking"].get("budget_tokens")
            if body["thinking"].get("type") == "enabled":
                if not isinstance(budget, int) or budget < 1024:
                    raise _invalid(
                        "thinking.enabled.budget_tokens: Input should be greater than or equal "
                        "to 1024"
                    )
                if budget >= max_tokens:
                    raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
        stops = body.get("stop_sequences")
        if stops is not None and (
            not isinstance(stops, list) or not all(isinstance(s, str) and s.strip() for s in stops)
        ):
            raise _invalid("stop_sequences: each stop sequence must contain non-whitespace")

    # -- answers --

    @staticmethod
    def _parts(call: Call, answer: Answer) -> tuple[str | None, int]:
        if answer.kind != "text":
            return None, 0
        if answer.reasoning is None or not call.show_reasoning:
            return None, 0
        return answer.reasoning, answer.reasoning_tokens

    @staticmethod
    def _stop(answer: Answer) -> str:
        if answer.kind != "text":
            return "refusal"
        return TO_ANTHROPIC_STOP.get(answer.finish, answer.finish)

    def completion(self, call: Call, answer: Answer) -> bytes:
        thinking, thinking_tokens = self._parts(call, answer)
        body = _copy(_MESSAGE if answer.kind == "text" else _REFUSAL)
        body["id"] = call.response_id
        body["model"] = call.model
        content: list[dict[str, Any]] = []
        if thinking is not None:
            content.append({"type": "thinking", "thinking": thinking, "signature": _SIGNATURE})
        if answer.kind == "text":
            content.append({"type": "text", "text": answer.text})
        body["content"] = content
        body["stop_reason"] = self._stop(answer)
        output = answer.completion_tokens + thinking_tokens if answer.kind == "text" else 0
        body["usage"]["input_tokens"] = answer.prompt_tokens
        body["usage"]["output_tokens"] = output
        return dumps(body)

    def stream(self, call: Call, answer: Answer) -> StreamPlan:
        by_type = {p["type"]: p for p in _STREAM}
        start = _copy(by_type["message_start"])
        start["message"]["id"] = call.response_id
        start["message"]["model"] = call.model
        start["message"]["usage"]["input_tokens"] = answer.prompt_tokens
        events = [_event("message_start", start)]
        thinking, thinking_tokens = self._parts(call, answer)
        index = 0
        pinged = False

        def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index, pinged
            events.append(
                _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": content_block},
                )
            )
            if not pinged:
                events.append(_event("ping", by_type["ping"]))
                pinged = True
            for delta in deltas:
                events.append(
                    _event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            events.append(
                _event("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1

        prefix = len(events) + 2  # message_start, content_block_start, ping
        if thinking is not None:
            block(
                {"type": "thinking", "thinking": "", "signature": ""},
                [{"type": "thinking_delta", "thinking": p} for p in pieces(thinking)]
                + [{"type": "signature_delta", "signature": _SIGNATURE}],
            )
        if answer.kind == "text":
            block(
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": p} for p in pieces(answer.text)],
            )
        else:
            events.append(_event("ping", by_type["ping"]))
        # A cut stream may end inside the last block, never after its content_block_stop.
        body_events = len(events) - 1
        delta = _copy(by_type["message_delta"])
        delta["delta"]["stop_reason"] = self._stop(answer)
        output = answer.completion_tokens + thinking_tokens if answer.kind == "text" else 0
        delta["usage"]["output_tokens"] = output
        events.append(_event("message_delta", delta))
        events.append(_event("message_stop", by_type["message_stop"]))
        return StreamPlan(events, body_events, prefix=min(prefix, body_events))
