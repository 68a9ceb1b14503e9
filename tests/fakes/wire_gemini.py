"""Gemini ``generateContent`` / ``streamGenerateContent``: request validation, answers and
errors, rendered from the fixtures in ``tests/fixtures/providers/gemini``."""

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
    show,
)

__all__ = ["GeminiWire"]

TO_GEMINI_FINISH = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "end_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_RETRY = load_fixture("gemini/error_429_retryinfo.json").body["error"]
_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: _RETRY["message"],
    500: "An internal error has occurred. Please retry or report the problem.",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
_COMPLETION = load_fixture("gemini/completion.json").body
_THOUGHTS = load_fixture("gemini/thoughts.json").body
_STREAM = load_fixture("gemini/stream.sse").payloads()
_SAFETY = load_fixture("gemini/safety_block.json").body
_PROMPT_BLOCK = load_fixture("gemini/prompt_block.json").body
_API_KEY_INVALID = load_fixture("gemini/error_api_key_invalid.json")
_EMPTY_PART = load_fixture("gemini/error_empty_part.json").body["error"]["message"]
_NOT_FOUND = load_fixture("gemini/error_model_not_found.json").body["error"]["message"]


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _get(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    """Google's JSON mapping accepts both spellings of a field."""
    return mapping.get(camel, mapping.get(snake))


def error_body(
    status: int, message: str | None, code: str | None = None, details: Any = None
) -> bytes:
    error: dict[str, Any] = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, "Request failed."),
        "status": code or GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if details is not None:
        error["details"] = details
    return dumps({"error": error})


def _invalid(message: str) -> Rejected:
    return Rejected(HttpError(400, error_body(400, message)))


def _text(content: Any) -> str:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return ""
    return " ".join(
        part["text"]
        for part in content["parts"]
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


class GeminiWire:
    not_json = b'{"candidates": [{"content": {"role": "model", "par'

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
        details = None
        if retry_delay is not None:
            details = [_copy(d) for d in _RETRY["details"]]
            for detail in details:
                if detail["@type"].endswith("RetryInfo"):
                    detail["retryDelay"] = retry_delay
                if detail["@type"].endswith("QuotaFailure") and model:
                    detail["violations"][0]["quotaDimensions"]["model"] = model
        headers = retry_headers(retry_after, retry_after_ms)
        return HttpError(status, error_body(status, message, code, details), header_items(headers))

    def quota_exhausted(self, call: Call) -> HttpError:
        details = [_copy(d) for d in _RETRY["details"] if not d["@type"].endswith("RetryInfo")]
        violation = details[0]["violations"][0]
        violation["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        violation["quotaDimensions"]["model"] = call.model
        violation["quotaValue"] = "250"
        return HttpError(429, error_body(429, _RETRY["message"], details=details))

    def overloaded(self, call: Call) -> HttpError:
        return HttpError(503, error_body(503, None))

    @staticmethod
    def _stream_error_status(kind: str) -> int:
        return {"overloaded": 503, "rate_limit": 429}.get(kind, 500)

    def stream_error_event(self, call: Call, message: str | None, kind: str) -> bytes:
        payload = error_body(self._stream_error_status(kind), message)
        return b"data: " + payload + b"\r\n\r\n" if call.sse else b",\r\n" + payload

    def stream_error_http(self, call: Call, message: str | None, kind: str) -> HttpError:
        status = self._stream_error_status(kind)
        return HttpError(status, error_body(status, message))

    def malformed(self, call: Call, payload: bytes) -> tuple[bytes, list[bytes]]:
        if call.sse:
            return payload, [b"data: " + payload + b"\r\n\r\n"]
        return payload, [b"[" + payload, b"]"]

    # -- requests --

    def authorise(self, flavour: str, request: RecordedRequest, api_key: str | None) -> None:
        if api_key is None:
            return
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key == api_key:
            return
        if not key:  # what Google answers when no key (or other identity) is sent at all
            raise Rejected(
                HttpError(
                    403,
                    error_body(
                        403,
                        "Method doesn't allow unregistered callers (callers without established "
                        "identity). Please use API Key or other form of API consumer identity "
                        "to call this API.",
                    ),
                )
            )
        # A wrong key is 400 INVALID_ARGUMENT (not 401/403) with reason API_KEY_INVALID.
        raise Rejected(HttpError(400, dumps(_API_KEY_INVALID.body)))

    def parse(
        self, flavour: str, request: RecordedRequest, lookup: Lookup, serial: int, **extra: str
    ) -> Call:
        model, method, version = extra["model"], extra["method"], extra["version"]
        body = request.json
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received.")
        info = lookup("gemini", model)
        if info is None:
            message = (
                _NOT_FOUND.replace("models/gemini-1.5-pro", f"models/{model}")
                .replace("API version v1beta", f"API version {version}")
                .replace("supported for generateContent", f"supported for {method}")
            )
            raise Rejected(HttpError(404, error_body(404, message)))
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _invalid("* GenerateContentRequest.contents: contents is not specified\n")
        last_user = ""
        prompt_words = len(_text(_get(body, "systemInstruction", "system_instruction")).split())
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise _invalid("Invalid value at 'contents'.")
            role = content.get("role", "user")
            if role not in ("user", "model"):
                raise _invalid("Please use a valid role: user, model.")
            self._check_parts(i, content.get("parts"))
            text = _text(content)
            prompt_words += len(text.split())
            if role == "user":
                last_user = text
        config = _get(body, "generationConfig", "generation_config") or {}
        include_thoughts = False
        if isinstance(config, dict):
            self._check_config(config, info["max_output"], info.get("fixed_sampling", False))
            thinking = _get(config, "thinkingConfig", "thinking_config")
            if isinstance(thinking, dict):
                include_thoughts = _get(thinking, "includeThoughts", "include_thoughts") is True
        return Call(
            flavour="gemini",
            model=model,
            stream=method == "streamGenerateContent",
            last_user_text=last_user,
            prompt_words=prompt_words,
            response_id=f"fake-gemini-{serial}",
            sse=request.query.get("alt") == "sse",
            show_reasoning=include_thoughts,
        )

    @staticmethod
    def _check_parts(i: int, parts: Any) -> None:
        if not isinstance(parts, list) or not parts:
            raise _invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise _invalid(f"Invalid value at 'contents[{i}].parts[{j}]'.")
            inline = _get(part, "inlineData", "inline_data")
            file_data = _get(part, "fileData", "file_data")
            if isinstance(inline, dict):
                mime = _get(inline, "mimeType", "mime_type") or ""
                if mime.startswith("image/") and mime not in _IMAGE_TYPES:
                    raise _invalid(f"Unsupported MIME type: {mime}")
            elif isinstance(file_data, dict):
                uri = _get(file_data, "fileUri", "file_uri")
                raise _invalid(f"Invalid or unsupported file uri: {uri}")
            elif not part.get("text") and not any(
                k in part
                for k in ("functionCall", "function_call", "functionResponse", "function_response")
            ):
                raise _invalid(
                    _EMPTY_PART.replace("contents[1].parts[0]", f"contents[{i}].parts[{j}]")
                )

    @staticmethod
    def _check_config(config: dict[str, Any], max_output: int, fixed_sampling: bool) -> None:
        temperature = config.get("temperature")
        if fixed_sampling and temperature is not None and temperature != 1:
            # Gemini 3.6 and later: custom sampling is deprecated; some clients report a
            # 400 (others say it is ignored). The strict reading, wording approximated.
            raise _invalid(
                f"Unable to submit request because temperature {show(temperature)} is not "
                "supported for this model. Remove it and try again."
            )
        if temperature is not None and (not number(temperature) or not 0 <= temperature <= 2):
            raise _invalid(
                f"Unable to submit request because it has a temperature value of "
                f"{show(temperature)} but the supported range is from 0 (inclusive) to 2.0001 "
                "(exclusive). Update the value and try again."
            )
        limit = _get(config, "maxOutputTokens", "max_output_tokens")
        if limit is not None and (not number(limit) or not 1 <= limit <= max_output):
            raise _invalid(
                f"Unable to submit request because it has a maxOutputTokens value of "
                f"{show(limit)} but the supported range is from 1 (inclusive) to "
                f"{max_output + 1} (exclusive). Update the value and try again."
            )

    # -- answers --

    @staticmethod
    def _usage(call: Call, answer: Answer, final: bool) -> dict[str, Any]:
        template = _COMPLETION["usageMetadata"]
        prompt = answer.prompt_tokens
        details = [{"modality": "TEXT", "tokenCount": prompt}]
        if not final or answer.kind != "text":
            return {
                "promptTokenCount": prompt,
                "totalTokenCount": prompt,
                "promptTokensDetails": details,
            }
        usage: dict[str, Any] = dict.fromkeys(template)
        usage.update(
            promptTokenCount=prompt,
            candidatesTokenCount=answer.completion_tokens,
            totalTokenCount=prompt + answer.completion_tokens + answer.reasoning_tokens,
            promptTokensDetails=details,
            thoughtsTokenCount=answer.reasoning_tokens,
        )
        if not answer.reasoning_tokens:
            del usage["thoughtsTokenCount"]
        return usage

    @staticmethod
    def _candidate(
        text: str | None, finish: str | None, thought: str | None = None
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        parts = []
        if thought:
            parts.append({"text": thought, "thought": True})
        # A blocked answer (e.g. SAFETY) with no text has no content at all, as with Google.
        if text or finish in (None, "STOP"):
            parts.append({"text": text or ""})
        if parts:
            candidate["content"] = {"parts": parts, "role": "model"}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        if finish == "SAFETY" and "content" not in candidate:
            candidate["safetyRatings"] = _copy(_SAFETY["candidates"][0]["safetyRatings"])
        return candidate

    def _blocked(self, call: Call, answer: Answer) -> dict[str, Any]:
        if answer.kind == "prompt_block":
            body = _copy(_PROMPT_BLOCK)
            body["promptFeedback"]["blockReason"] = answer.block_reason
            if answer.block_reason != "SAFETY":
                body["promptFeedback"].pop("safetyRatings", None)
        else:
            body = _copy(_SAFETY)
        assert isinstance(body, dict)
        body["usageMetadata"] = self._usage(call, answer, final=False)
        body["modelVersion"] = call.model
        body["responseId"] = call.response_id
        return body

    def completion(self, call: Call, answer: Answer) -> bytes:
        if answer.kind != "text":
            return dumps(self._blocked(call, answer))
        thought = answer.reasoning if call.show_reasoning else None
        body = _copy(_THOUGHTS if thought else _COMPLETION)
        body["candidates"] = [
            self._candidate(
                answer.text, TO_GEMINI_FINISH.get(answer.finish, answer.finish), thought
            )
        ]
        body["usageMetadata"] = self._usage(call, answer, final=True)
        body["modelVersion"] = call.model
        body["responseId"] = call.response_id
        return dumps(body)

    def stream(self, call: Call, answer: Answer) -> StreamPlan:
        if answer.kind != "text":
            return StreamPlan(self._frame(call, [dumps(self._blocked(call, answer))]), 0)
        template = _STREAM[-1]
        finish = TO_GEMINI_FINISH.get(answer.finish, answer.finish)
        payloads = []
        if answer.reasoning and call.show_reasoning:
            for piece in pieces(answer.reasoning):
                chunk = dict(template)
                chunk["candidates"] = [
                    {"content": {"parts": [{"text": piece, "thought": True}], "role": "model"},
                     "index": 0}
                ]  # fmt: skip
                chunk["usageMetadata"] = self._usage(call, answer, final=False)
                chunk.update(modelVersion=call.model, responseId=call.response_id)
                payloads.append(dumps(chunk))
        texts = pieces(answer.text) or [""]
        for index, piece in enumerate(texts):
            final = index == len(texts) - 1
            chunk = dict(template)
            chunk["candidates"] = [self._candidate(piece, finish if final else None)]
            chunk["usageMetadata"] = self._usage(call, answer, final=final)
            chunk.update(modelVersion=call.model, responseId=call.response_id)
            payloads.append(dumps(chunk))
        return StreamPlan(self._frame(call, payloads), len(payloads) - 1)

    @staticmethod
    def _frame(call: Call, payloads: list[bytes]) -> list[bytes]:
        if call.sse:
            return [b"data: " + payload + b"\r\n\r\n" for payload in payloads]
        # Without alt=sse Google streams one JSON array, element by element.
        framed = [(b"[" if i == 0 else b",\r\n") + p for i, p in enumerate(payloads)]
        framed.append(b"]")
        return framed
