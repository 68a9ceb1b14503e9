"""OpenAI chat completions and its compatible flavours (Moonshot, DashScope, DeepSeek,
Ollama, vLLM): request validation, answers and errors, rendered from the fixtures."""

from __future__ import annotations

import http
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from tests.fakes.wire_openai_params import Invalid, check_messages, check_options

__all__ = ["OpenAIWire"]

TO_OPENAI_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "end_turn": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,", re.IGNORECASE)
_ROLES = ("system", "user", "assistant", "tool", "function", "developer")


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _openai_error(message: str, kind: str, code: Any, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# status: (message, type, code) per flavour; "{model}" is filled in.
_OPENAI_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "permission_error", None),
    404: ("The model `{model}` does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: (load_fixture("openai/error_rate_limit.json").body["error"]["message"],
          "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}  # fmt: skip
_MOONSHOT_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("Invalid request", "invalid_request_error"),
    401: ("Invalid Authentication", "invalid_authentication_error"),
    403: ("The API you are accessing is not open", "permission_denied_error"),
    404: ("Not found the model {model} or Permission denied", "resource_not_found_error"),
    429: ("Your account org-parley<ak-parley> request reached organization max RPM: 3, "
          "please try again after 1 seconds", "rate_limit_reached_error"),
    500: ("Internal server error", "server_error"),
    503: ("The engine is currently overloaded, please try again later",
          "engine_overloaded_error"),
}  # fmt: skip
_DASHSCOPE_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("Invalid request.", "invalid_request_error", "invalid_parameter_error"),
    401: ("Incorrect API key provided. ", "invalid_request_error", "invalid_api_key"),
    403: ("Access denied.", "invalid_request_error", "access_denied"),
    404: ("The model `{model}` does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: ("Requests rate limit exceeded, please try again later.", "limit_requests",
          "limit_requests"),
    500: ("An internal error has occured, please try again later or contact service support.",
          "internal_error", "internal_error"),
    503: ("The service is temporarily unavailable, please try again later.", "internal_error",
          "ServiceUnavailable"),
}  # fmt: skip
_DEEPSEEK_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("Invalid request.", "invalid_request_error"),
    401: ("Authentication Fails, Your api key: ****test is invalid", "authentication_error"),
    402: ("Insufficient Balance", "unknown_error"),
    404: ("Model Not Exist", "invalid_request_error"),
    422: ("Invalid parameters.", "invalid_request_error"),
    429: ("Rate Limit Reached", "rate_limit_error"),
    500: ("Server Error", "server_error"),
    503: ("Server Overloaded", "server_error"),
}
_VLLM_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError"}


@dataclass(frozen=True, slots=True)
class _Templates:
    completion: dict[str, Any]
    role_chunk: dict[str, Any]
    content_chunk: dict[str, Any]
    finish_chunk: dict[str, Any]
    usage_chunk: dict[str, Any] | None  # None: this flavour puts usage in the finish chunk
    reasoning_field: str | None  # where reasoning text goes; None: not shown (OpenAI)


def _stream_parts(name: str) -> tuple[Any, Any, Any, Any | None]:
    payloads = [p for p in load_fixture(name).payloads() if p != "[DONE]"]
    role, content = payloads[0], payloads[1]
    usage = payloads[-1] if payloads[-1]["choices"] == [] else None
    finish = payloads[-2] if usage is not None else payloads[-1]
    return role, content, finish, usage


def _plain_completion() -> dict[str, Any]:
    """The OpenAI completion without OpenAI-only fields, for compatible servers."""
    body: dict[str, Any] = _copy(load_fixture("openai/completion.json").body)
    body.pop("service_tier", None)
    message = body["choices"][0]["message"]
    message.pop("refusal", None)
    message.pop("annotations", None)
    body["usage"] = {k: body["usage"][k] for k in ("prompt_tokens", "completion_tokens")} | {
        "total_tokens": 0
    }
    return body


def _plain_chunk(template: Any, delta: dict[str, Any] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = _copy(template)
    chunk.pop("service_tier", None)
    chunk.pop("usage", None)
    if delta is not None and chunk["choices"]:
        chunk["choices"][0]["delta"] = delta
    return chunk


def _build_templates() -> dict[str, _Templates]:
    o_role, o_content, o_finish, o_usage = _stream_parts("openai/stream_usage.sse")
    d_role, _, d_finish, d_usage = _stream_parts("dashscope/stream_reasoning.sse")
    d_content = next(
        p
        for p in load_fixture("dashscope/stream_reasoning.sse").payloads()
        if p != "[DONE]" and p["choices"] and p["choices"][0]["delta"].get("content")
    )
    m_role, m_content, m_finish, _ = _stream_parts("moonshot/stream_choice_usage.sse")
    dashscope_completion = _plain_completion()
    dashscope_completion["usage"]["completion_tokens_details"] = {"reasoning_tokens": 0}
    plain_role = _plain_chunk(o_role, {"role": "assistant", "content": ""})
    plain = _Templates(
        _plain_completion(),
        plain_role,
        _plain_chunk(o_content),
        _plain_chunk(o_finish),
        _plain_chunk(o_usage),
        "reasoning_content",
    )
    return {
        "openai": _Templates(
            load_fixture("openai/completion.json").body, o_role, o_content, o_finish, o_usage, None
        ),
        "moonshot": _Templates(
            _plain_completion(), m_role, m_content, m_finish, None, "reasoning_content"
        ),
        "dashscope": _Templates(
            dashscope_completion, d_role, d_content, d_finish, d_usage, "reasoning_content"
        ),
        "deepseek": _Templates(
            load_fixture("deepseek/reasoner_completion.json").body,
            plain_role,
            plain.content_chunk,
            plain.finish_chunk,
            plain.usage_chunk,
            "reasoning_content",
        ),
        "ollama": plain,
        "vllm": plain,
    }


_TEMPLATES = _build_templates()
_REFUSAL = load_fixture("openai/refusal.json").body
_REFUSAL_ROLE = load_fixture("openai/stream_refusal.sse").payloads()[0]
_STREAM_ERROR = load_fixture("openai/stream_error.sse").payloads()[-1]
_MAX_TOKENS_ERROR = load_fixture("openai/reasoning_max_tokens_error.json")
_TEMPERATURE_ERROR = load_fixture("openai/reasoning_temperature_error.json")
_QUOTA = load_fixture("openai/error_insufficient_quota.json")
_RATE_LIMIT = load_fixture("openai/error_rate_limit.json")
_MOONSHOT_TEMPERATURE = load_fixture("moonshot/error_temperature.json")
_ENABLE_THINKING = load_fixture("dashscope/error_enable_thinking.json")
_RATE_LIMIT_HEADERS = {k: v for k, v in _RATE_LIMIT.headers.items() if k.startswith("x-ratelimit-")}


def _usage(template: dict[str, Any], prompt: int, completion: int, reasoning: int) -> Any:
    usage = _copy(template)
    usage["prompt_tokens"] = prompt
    usage["completion_tokens"] = completion
    usage["total_tokens"] = prompt + completion
    if "completion_tokens_details" in usage:
        usage["completion_tokens_details"]["reasoning_tokens"] = reasoning
    if "prompt_cache_miss_tokens" in usage:
        usage["prompt_cache_miss_tokens"] = prompt
    return usage


class OpenAIWire:
    not_json = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess'

    # -- errors --

    def _body(
        self, flavour: str, status: int, message: str | None, code: str | None, model: str = ""
    ) -> dict[str, Any]:
        if flavour == "moonshot":
            msg, kind = _MOONSHOT_DEFAULTS.get(status, ("Request failed", "server_error"))
            return {"error": {"message": message or msg.format(model=model), "type": code or kind}}
        if flavour == "dashscope":
            msg, kind, ds_code = _DASHSCOPE_DEFAULTS.get(
                status, ("Request failed.", "internal_error", "internal_error")
            )
            return {
                "error": {
                    "code": code or ds_code,
                    "param": None,
                    "message": message or msg.format(model=model),
                    "type": kind,
                },
                "request_id": "fake-request-id",
            }
        if flavour == "deepseek":
            msg, kind = _DEEPSEEK_DEFAULTS.get(status, ("Request failed.", "server_error"))
            return _openai_error(message or msg, kind, code or "invalid_request_error")
        if flavour == "ollama":
            kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
            if message is None:
                message = (
                    f'model "{model}" not found, try pulling it first'
                    if status == 404
                    else http_phrase(status)
                )
            return _openai_error(message, kind, code)
        if flavour == "vllm":
            return {
                "error": {
                    "message": message
                    or (f"The model `{model}` does not exist." if status == 404 else "Error"),
                    "type": code or _VLLM_TYPES.get(status, "InternalServerError"),
                    "param": None,
                    "code": status,
                }
            }
        default_message, kind, default_code = _OPENAI_DEFAULTS.get(
            status,
            ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None),
        )
        if status == 429 and model:
            default_message = default_message.replace(" for gpt-4o-mini ", f" for {model} ")
        return _openai_error(
            message or default_message.format(model=model),
            kind,
            code if code is not None else default_code,
        )

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
        if status == 429 and flavour == "openai":
            headers |= _RATE_LIMIT_HEADERS
        body = self._body(flavour, status, message, code, model)
        return HttpError(status, dumps(body), header_items(headers))

    def _reject(self, flavour: str, status: int, body: dict[str, Any]) -> Rejected:
        if flavour == "dashscope" and "request_id" not in body:
            error = body["error"]
            body = {
                "error": {
                    "code": error.get("code") or "invalid_parameter_error",
                    "param": error.get("param"),
                    "message": error["message"],
                    "type": error.get("type", "invalid_request_error"),
                },
                "request_id": "fake-request-id",
            }
        elif flavour == "moonshot":
            body = {"error": {"message": body["error"]["message"], "type": body["error"]["type"]}}
        return Rejected(HttpError(status, dumps(body)))

    def _invalid(
        self, flavour: str, message: str, param: str | None = None, code: str | None = None
    ) -> Rejected:
        return self._reject(
            flavour, 400, _openai_error(message, "invalid_request_error", code, param)
        )

    def quota_exhausted(self, call: Call) -> HttpError:
        if call.flavour == "moonshot":
            message = (
                "Your account org-parley<ak-parley> is suspended, please check your plan and "
                "billing details"
            )
            return self.http_error("moonshot", 429, message, "exceeded_current_quota_error")
        if call.flavour == "dashscope":
            message = "Access denied, please make sure your account is in good standing."
            return self.http_error("dashscope", 400, message, "Arrearage")
        if call.flavour == "deepseek":
            return self.http_error("deepseek", 402, None)
        if call.flavour == "openai":
            return HttpError(429, dumps(_QUOTA.body), header_items(_QUOTA.headers))
        return self.http_error(call.flavour, 429, None, model=call.model)

    def overloaded(self, call: Call) -> HttpError:
        return self.http_error(call.flavour, 503, None, model=call.model)

    def _stream_error_status(self, kind: str) -> int:
        return {"overloaded": 503, "rate_limit": 429}.get(kind, 500)

    def stream_error_event(self, call: Call, message: str | None, kind: str) -> bytes:
        status = self._stream_error_status(kind)
        body = self._body(call.flavour, status, message, None, call.model)
        if call.flavour == "openai" and kind == "server_error":
            body = _copy(_STREAM_ERROR)
            if message:
                body["error"]["message"] = message
        return b"data: " + dumps({"error": body["error"]}) + b"\n\n"

    def stream_error_http(self, call: Call, message: str | None, kind: str) -> HttpError:
        return self.http_error(
            call.flavour, self._stream_error_status(kind), message, model=call.model
        )

    def malformed(self, call: Call, payload: bytes) -> tuple[bytes, list[bytes]]:
        return payload, [b"data: " + payload + b"\n\n", b"data: [DONE]\n\n"]

    # -- requests --

    def authorise(self, flavour: str, request: RecordedRequest, api_key: str | None) -> None:
        if api_key is None or flavour == "ollama":  # Ollama ignores keys
            return
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key == api_key:
            return
        if flavour == "moonshot":
            body: Any = self._body("moonshot", 401, None, None)
        elif flavour == "dashscope":
            body = self._body("dashscope", 401, None, None)
        elif flavour == "deepseek":
            shown = "****" + key[-4:] if key else "****"
            body = _openai_error(
                f"Authentication Fails, Your api key: {shown} is invalid",
                "authentication_error",
                "invalid_request_error",
            )
        elif flavour == "vllm":
            body = {"error": "Unauthorized"}
        elif not key:
            body = _openai_error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        else:
            shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "****"
            body = _openai_error(
                f"Incorrect API key provided: {shown}. You can find your API key in settings.",
                "invalid_request_error",
                "invalid_api_key",
            )
        raise Rejected(HttpError(401, dumps(body)))

    def model_not_found(self, flavour: str, model: str) -> Rejected:
        if flavour == "deepseek":  # DeepSeek answers an unknown model with a 400
            return Rejected(
                HttpError(
                    400,
                    dumps(
                        _openai_error(
                            "Model Not Exist", "invalid_request_error", "invalid_request_error"
                        )
                    ),
                )
            )
        return Rejected(self.http_error(flavour, 404, None, model=model))

    def parse(
        self, flavour: str, request: RecordedRequest, lookup: Lookup, serial: int, **extra: str
    ) -> Call:
        body = request.json
        if not isinstance(body, dict):
            raise self._invalid(
                flavour,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            )
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise self._invalid(flavour, "you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            raise self._invalid(flavour, "Missing required parameter: 'messages'.", "messages")
        info = lookup(flavour, model)
        if info is None:
            raise self.model_not_found(flavour, model)

        last_user = ""
        prompt_words = 0
        texts: list[str] = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise self._invalid(
                    flavour, "Invalid type for 'messages': expected an object.", "messages"
                )
            role = message.get("role")
            if role not in _ROLES:
                raise self._invalid(
                    flavour,
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                    "'user', 'function', 'tool', and 'developer'.",
                    f"messages[{i}].role",
                    "invalid_value",
                )
            content = message.get("content")
            text = self._content_text(flavour, model, info["images"], i, content)
            prompt_words += len(text.split())
            texts.append(text)
            if role == "user":
                last_user = text

        self._check_sampling(flavour, model, info, body)
        try:
            check_messages(messages)
            plan = check_options(
                flavour, body, flavour == "openai" and bool(info["reasoning"]), texts
            )
        except Invalid as invalid:
            raise self._refuse(flavour, invalid) from None
        stream = body.get("stream") is True
        show_reasoning = self._show_reasoning(flavour, info, body, stream)
        options = body.get("stream_options")
        prefix = "chatcmpl-" if flavour != "deepseek" else ""
        return Call(
            flavour=flavour,
            model=model,
            stream=stream,
            last_user_text=last_user,
            prompt_words=prompt_words,
            response_id=f"{prefix}fake{serial}",
            include_usage=stream
            and isinstance(options, dict)
            and options.get("include_usage") is True,
            show_reasoning=show_reasoning,
            tools=plan.tools,
            forced_tool=plan.forced,
            json_mode=plan.json_mode,
        )

    @staticmethod
    def _show_reasoning(flavour: str, info: Any, body: dict[str, Any], stream: bool) -> bool:
        """DashScope's enable_thinking (a qwen3 reasoning model refuses a non-streaming call
        without ``enable_thinking: false``); every other flavour shows what it has."""
        if flavour != "dashscope":
            return True
        thinking = body.get("enable_thinking")
        if not info["reasoning"]:
            return thinking is True
        if not stream and thinking is not False:
            raise Rejected(HttpError(400, dumps(_ENABLE_THINKING.body)))
        return thinking is not False

    def _refuse(self, flavour: str, invalid: Invalid) -> Rejected:
        """A parameter check's 400 in the flavour's words and error body."""
        message, param, code = invalid.message, invalid.param, invalid.code
        if flavour == "deepseek":  # DeepSeek: param null, code "invalid_request_error"
            if message.startswith("Invalid parameter: messages with role 'tool'"):
                # as DeepSeek words it (FoundationAgents/OpenManus#23, qwersyk/Newelle#425)
                message = (
                    "Messages with role 'tool' must be a response to a preceding message with "
                    "'tool_calls'"
                )
            return self._invalid(flavour, message, None, "invalid_request_error")
        if flavour == "dashscope":
            # DashScope's words for the tool turns (philschmid/mcp-openai-gemini-llama-example
            # #5, QwenLM/qwen-code#606); other checks keep OpenAI's text.
            if message.startswith("Invalid parameter: messages with role 'tool'"):
                message = (
                    '<400> InternalError.Algo.InvalidParameter: messages with role "tool" must '
                    'be a response to a preceeding message with "tool_calls".'
                )
            elif message.startswith("An assistant message with 'tool_calls'"):
                message = (
                    "<400> InternalError.Algo.InvalidParameter: An assistant message with "
                    '"tool_calls" must be followed by tool messages responding to each '
                    '"tool_call_id". The following tool_call_ids did not have response '
                    f"messages: message[{(param or '').removeprefix('messages.[').split(']')[0]}]"
                    ".role"
                )
            return self._invalid(flavour, message, None, "invalid_parameter_error")
        return self._invalid(flavour, message, param, code)

    def _content_text(self, flavour: str, model: str, images: bool, i: int, content: Any) -> str:
        if content is None or isinstance(content, str):
            return content or ""
        if not isinstance(content, list):
            raise self._invalid(
                flavour,
                f"Invalid type for 'messages[{i}].content': expected one of a string or array "
                "of objects, but got an object instead.",
                f"messages[{i}].content",
                "invalid_type",
            )
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url":
                self._check_image(flavour, images, i, j, part.get("image_url"))
        return " ".join(texts)

    def _check_image(self, flavour: str, images: bool, i: int, j: int, image: Any) -> None:
        if not images:
            raise self._invalid(
                flavour,
                "Invalid content type. image_url is only supported by certain models.",
                f"messages.[{i}].content.[{j}].type",
            )
        url = image.get("url") if isinstance(image, dict) else image
        url = url if isinstance(url, str) else ""
        data = _DATA_URI.match(url)
        if flavour == "ollama":  # the OpenAI layer of Ollama decodes data: URIs only
            if data is None or data[1].lower() not in ("image/jpeg", "image/png", "image/webp"):
                raise self._reject(
                    flavour,
                    400,
                    _openai_error("invalid image input", "invalid_request_error", None),
                )
            return
        if data is not None:
            if data[1].lower() not in ("image/png", "image/jpeg", "image/webp", "image/gif"):
                raise self._invalid(
                    flavour,
                    "You uploaded an unsupported image. Please make sure your image has of one "
                    "the following formats: ['png', 'jpeg', 'gif', 'webp'].",
                    None,
                    "invalid_image_format",
                )
            return
        if not url.startswith(("http://", "https://")):
            param = f"messages[{i}].content[{j}].image_url.url"
            raise self._invalid(
                flavour,
                f"Invalid '{param}'. Expected a valid URL, but got a value with an invalid format.",
                param,
                "invalid_value",
            )

    def _check_sampling(self, flavour: str, model: str, info: Any, body: dict[str, Any]) -> None:
        temperature = body.get("temperature")
        if flavour == "openai" and info["reasoning"]:
            if "max_tokens" in body:
                raise Rejected(HttpError(400, dumps(_MAX_TOKENS_ERROR.body)))
            if temperature is not None and temperature != 1:
                error = _copy(_TEMPERATURE_ERROR.body)
                error["error"]["message"] = error["error"]["message"].replace(
                    "support 0.2 ", f"support {show(temperature)} "
                )
                raise Rejected(HttpError(400, dumps(error)))
        if info.get("fixed_sampling") and temperature is not None and temperature != 1:
            # Kimi K2.6 and later (Moonshot's 400, as reported by users of its API).
            raise self._invalid(
                flavour, "invalid temperature: only 1 is allowed for this model", "temperature"
            )
        if temperature is not None:
            if not number(temperature):
                raise self._invalid(
                    flavour,
                    "Invalid type for 'temperature': expected a decimal, but got a string instead.",
                    "temperature",
                    "invalid_type",
                )
            self._check_temperature(flavour, float(temperature), temperature)
        self._check_limits(flavour, info, body)

    def _check_limits(self, flavour: str, info: Any, body: dict[str, Any]) -> None:
        for name in ("max_completion_tokens", "max_tokens"):
            limit = body.get(name)
            if limit is None:
                continue
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise self._invalid(
                    flavour,
                    f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but "
                    f"got {show(limit)} instead.",
                    name,
                    "integer_below_min_value",
                )
            if limit > info["max_output"]:
                if flavour == "openai":
                    raise self._invalid(
                        flavour,
                        f"max_tokens is too large: {limit}. This model supports at most "
                        f"{info['max_output']} completion tokens, whereas you provided {limit}.",
                        name,
                        "invalid_value",
                    )
                if flavour == "deepseek":
                    raise self._invalid(
                        flavour,
                        "Invalid max_tokens value, the valid range of max_tokens is "
                        f"[1, {info['max_output']}]",
                        None,
                        "invalid_request_error",
                    )

    def _check_temperature(self, flavour: str, value: float, raw: Any) -> None:
        if flavour == "moonshot" and not 0 <= value <= 1:
            error = _copy(_MOONSHOT_TEMPERATURE.body)
            error["error"]["message"] = error["error"]["message"].replace("1.5", show(raw))
            raise Rejected(HttpError(400, dumps(error)))
        if flavour == "dashscope" and not 0 <= value < 2:
            raise self._invalid(
                flavour,
                "<400> InternalError.Algo.InvalidParameter: Range of temperature should be "
                "[0.0, 2.0)",
                None,
                "invalid_parameter_error",
            )
        if flavour == "deepseek" and not 0 <= value <= 2:
            raise self._invalid(
                flavour,
                "Invalid temperature value, the valid range of temperature is [0, 2]",
                None,
                "invalid_request_error",
            )
        if flavour == "openai" and value > 2:
            raise self._invalid(
                flavour,
                "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but "
                f"got {show(raw)} instead.",
                "temperature",
                "decimal_above_max_value",
            )
        if flavour == "openai" and value < 0:
            raise self._invalid(
                flavour,
                "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but "
                f"got {show(raw)} instead.",
                "temperature",
                "decimal_below_min_value",
            )

    # -- answers --

    def _reported(self, call: Call, answer: Answer) -> tuple[str | None, int]:
        """(reasoning text shown, reasoning tokens counted)."""
        if answer.reasoning is None or not call.show_reasoning:
            return None, 0
        if _TEMPLATES[call.flavour].reasoning_field is None:
            return None, answer.reasoning_tokens
        return answer.reasoning, answer.reasoning_tokens

    def completion(self, call: Call, answer: Answer) -> bytes:
        t = _TEMPLATES[call.flavour]
        refusing = answer.kind == "refusal" and call.flavour == "openai"
        body = _copy(_REFUSAL if refusing else t.completion)
        body["id"] = call.response_id
        body["created"] = int(time.time())
        body["model"] = call.model
        choice = body["choices"][0]
        message = choice["message"]
        reasoning, reasoning_tokens = self._reported(call, answer)
        completion_tokens = answer.completion_tokens
        if answer.kind in ("safety", "prompt_block"):
            message["content"] = None
            choice["finish_reason"] = "content_filter"
            completion_tokens = 0
        elif refusing:
            message["refusal"] = answer.text
            choice["finish_reason"] = "stop"
        elif answer.kind == "tool_calls":
            # The shape of the tool-call completions recorded in openai-python's
            # tests/lib/chat/test_completions.py: content null, a tool_calls list of objects
            # with id, type "function" and function name and arguments, refusal null, and
            # finish_reason "tool_calls".
            calls = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in answer.tool_calls
            ]
            rest = {k: v for k, v in message.items() if k not in ("role", "content")}
            message = choice["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": calls,
                **rest,
            }
            choice["finish_reason"] = "tool_calls"
        else:
            message["content"] = answer.text
            choice["finish_reason"] = TO_OPENAI_FINISH.get(answer.finish, answer.finish)
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        else:
            message.pop("reasoning_content", None)
        body["usage"] = _usage(
            body["usage"],
            answer.prompt_tokens,
            completion_tokens + reasoning_tokens,
            reasoning_tokens,
        )
        details = "completion_tokens_details" in body["usage"]
        if call.flavour == "deepseek" and details and reasoning is None:
            del body["usage"]["completion_tokens_details"]
        return dumps(body)

    @staticmethod
    def _tool_call_chunks(
        t: _Templates, answer: Answer, chunk: Callable[[dict[str, Any], dict[str, Any]], bytes]
    ) -> list[bytes]:
        """The chunks of streamed tool calls, as openai-python records them
        (.inline-snapshot/external/a247c49c5fcd...bin, a streamed get_weather call): the first
        chunk's delta is the role chunk with ``"content": null`` carrying the first call's
        ``index``, ``id``, ``type`` and ``function.name`` with ``"arguments": ""``; then chunks
        whose delta is ``{"tool_calls": [{"index": i, "function": {"arguments": piece}}]}``.
        A further (parallel) call opens with its own ``{"index", "id", "type", "function":
        {"name", "arguments": ""}}`` delta. The finishing chunk (``finish_reason:
        "tool_calls"``) and the usage chunk follow as for text."""
        events: list[bytes] = []
        for index, c in enumerate(answer.tool_calls):
            opening = {
                "index": index,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": ""},
            }
            if index == 0:
                delta = dict(t.role_chunk["choices"][0]["delta"])
                delta["content"] = None
                delta["tool_calls"] = [opening]
                if "refusal" in delta:  # keep OpenAI's key order: role, content, tool_calls
                    delta["refusal"] = delta.pop("refusal")
                events.append(chunk(t.role_chunk, delta))
            else:
                events.append(chunk(t.content_chunk, {"tool_calls": [opening]}))
            events += [
                chunk(
                    t.content_chunk,
                    {"tool_calls": [{"index": index, "function": {"arguments": piece}}]},
                )
                for piece in argument_pieces(c.arguments)
            ]
        return events

    def stream(self, call: Call, answer: Answer) -> StreamPlan:
        t = _TEMPLATES[call.flavour]
        created = int(time.time())
        openai = call.flavour == "openai"
        with_usage_field = openai and call.include_usage

        def chunk(
            template: dict[str, Any], delta: dict[str, Any], finish: str | None = None
        ) -> bytes:
            payload = dict(template)
            payload["id"] = call.response_id
            payload["created"] = created
            payload["model"] = call.model
            choice = dict(template["choices"][0])
            choice["delta"] = delta
            choice["finish_reason"] = finish
            choice.pop("usage", None)
            payload["choices"] = [choice]
            if openai:
                if with_usage_field:
                    payload["usage"] = None
                else:
                    payload.pop("usage", None)
            return b"data: " + dumps(payload) + b"\n\n"

        reasoning, reasoning_tokens = self._reported(call, answer)
        refusing = answer.kind == "refusal" and openai
        blocked = answer.kind in ("safety", "prompt_block")
        events: list[bytes] = []
        if refusing:
            events.append(chunk(t.role_chunk, dict(_REFUSAL_ROLE["choices"][0]["delta"])))
            events += [chunk(t.content_chunk, {"refusal": p}) for p in pieces(answer.text)]
        elif answer.kind == "tool_calls":
            events += self._tool_call_chunks(t, answer, chunk)
        else:
            events.append(chunk(t.role_chunk, dict(t.role_chunk["choices"][0]["delta"])))
        if reasoning is not None:
            events += [
                chunk(t.content_chunk, {"content": None, "reasoning_content": p})
                for p in pieces(reasoning)
            ]
        if not refusing and not blocked:
            with_null = reasoning is not None and call.flavour in ("dashscope", "deepseek")
            events += [
                chunk(
                    t.content_chunk,
                    {"content": p, "reasoning_content": None} if with_null else {"content": p},
                )
                for p in pieces(answer.text)
            ]
        body_events = len(events)
        completion_tokens = 0 if blocked else answer.completion_tokens
        usage = _usage(
            (t.usage_chunk or {}).get("usage")
            or t.finish_chunk["choices"][0].get("usage")
            or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            answer.prompt_tokens,
            completion_tokens + reasoning_tokens,
            reasoning_tokens,
        )
        finish = _stream_finish(answer, refusing)
        finish_delta = dict(t.finish_chunk["choices"][0]["delta"])
        if t.usage_chunk is None:  # Moonshot: usage inside the finishing choice, always
            finishing = json.loads(chunk(t.finish_chunk, finish_delta, finish)[6:])
            finishing["choices"][0]["usage"] = usage
            events.append(b"data: " + dumps(finishing) + b"\n\n")
        else:
            events.append(chunk(t.finish_chunk, finish_delta, finish))
            if call.include_usage:
                usage_chunk = dict(t.usage_chunk)
                usage_chunk.update(id=call.response_id, created=created, model=call.model)
                usage_chunk["usage"] = usage
                events.append(b"data: " + dumps(usage_chunk) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        return StreamPlan(events, body_events, terminator=1, prefix=1)


def _stream_finish(answer: Answer, refusing: bool) -> str:
    if answer.kind in ("safety", "prompt_block"):
        return "content_filter"
    if refusing:
        return "stop"
    if answer.kind == "tool_calls":
        return "tool_calls"
    return TO_OPENAI_FINISH.get(answer.finish, answer.finish)


def argument_pieces(arguments: str) -> list[str]:
    """Token-like fragments whose concatenation is exactly ``arguments``: words (with their
    leading space) and runs of punctuation, as OpenAI streams them (``{"``, ``city``, ``":"``,
    ``San``, `` Francisco``, ``"}``)."""
    return _ARGUMENT_PIECES.findall(arguments)


_ARGUMENT_PIECES = re.compile(r"\s*\w+|[^\w\s]+|\s+")


def http_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Request failed"
