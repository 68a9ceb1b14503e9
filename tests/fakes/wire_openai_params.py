"""The Chat Completions parameters beyond model, messages and sampling temperature, checked
the way OpenAI checks them: ``top_p``, ``stop``, ``n``, ``tools``, ``tool_choice``,
``response_format``, and the tool-call turns of ``messages``.

Each check raises ``Invalid`` with OpenAI's own ``message``, ``param`` and ``code``; the wire
(``wire_openai.OpenAIWire``) turns it into the flavour's error body. Where the wording comes
from (all OpenAI 400 ``invalid_request_error`` bodies as the API returns them, quoted in
public issues):

* the generic shapes ``Invalid type for 'X': expected ..., but got ... instead.``
  (``invalid_type``), ``Invalid 'X': decimal above maximum value. Expected a value <= 1, but
  got 5 instead.`` (``decimal_above_max_value``; top_p: openclaw tests), ``Invalid 'n':
  integer below minimum value. ...`` (``integer_below_min_value``), ``Invalid 'stop': array
  too long. Expected an array with maximum length 4, but got an array with length 14
  instead.`` (``array_above_max_length``; continuedev/continue#1572), ``Invalid 'tools':
  empty array. ...`` (``empty_array``) and ``Missing required parameter: 'X'.``
  (``missing_required_parameter``, e.g. ``response_format.json_schema.name``);
* tool names: ``Invalid 'tools[0].function.name': string does not match pattern. Expected a
  string that matches the pattern '^[a-zA-Z0-9_-]+$'.`` (``invalid_value``;
  run-llama/llama_index#16093), at most 64 characters (the documented limit);
* ``Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are
  specified.`` (param ``tool_choice``, code null; even for ``"none"``, as vllm-project/vllm
  #40311 measured against the real API);
* ``'messages' must contain the word 'json' in some form, to use 'response_format' of type
  'json_object'.`` (param ``messages``, code null);
* tool turns: ``Invalid parameter: messages with role 'tool' must be a response to a
  preceeding message with 'tool_calls'.`` (param ``messages.[3].role``, code null; OpenAI's
  spelling, miurla/morphic#136), ``Invalid parameter: 'tool_call_id' of 'call_x' not found in
  'tool_calls' of previous message.``, ``Missing parameter 'tool_call_id': messages with role
  'tool' must have a 'tool_call_id'.`` (param ``messages.[3].tool_call_id``), ``An assistant
  message with 'tool_calls' must be followed by tool messages responding to each
  'tool_call_id'. The following tool_call_ids did not have response messages: call_x``
  (param ``messages.[6].role``), and ``Invalid value for 'content': expected a string, got
  null.`` for an assistant turn with neither content nor tool calls;
* reasoning models (GPT-5 and later, o-series): ``Unsupported parameter: 'top_p' is not
  supported with this model.`` (accepted when 1) and ``Unsupported parameter: 'stop' is not
  supported with this model.`` (``unsupported_parameter``).

The named-function ``tool_choice`` that is not among the tools has no public OpenAI wording
that we found; the message here is an approximation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.wire_common import number

__all__ = ["Invalid", "ToolPlan", "check_messages", "check_options", "kind_of"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_NAME_PATTERN = "^[a-zA-Z0-9_-]+$"
_MAX_NAME = 64
_MAX_TOOLS = 128
_MAX_TOOL_CALL_ID = 40
_MAX_N = 128
# How many stop sequences each flavour takes (None: no limit it enforces). OpenAI: 4 (API
# reference); DeepSeek: 16 (api-docs.deepseek.com); Moonshot: 5 (platform.moonshot.ai chat
# API); DashScope, Ollama and vLLM pass a list of any length to the engine.
_MAX_STOP: dict[str, int | None] = {"openai": 4, "deepseek": 16, "moonshot": 5}
_TOOL_CHOICES = ("none", "auto", "required")
_FORMATS = ("json_object", "json_schema", "text")


class Invalid(Exception):
    """A 400 in OpenAI's terms; the wire renders it in the flavour's error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What the checked options mean for the answer."""

    tools: tuple[str, ...] = ()  # the function tools' names, in request order
    forced: str | None = None  # the function the model must call (tool_choice), if any
    json_mode: bool = False  # response_format json_object / json_schema


def kind_of(value: Any) -> str:
    """A JSON value's kind as OpenAI names it in ``but got ... instead``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing(param: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> Invalid:
    return Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {kind_of(value)} instead.",
        param,
        "invalid_type",
    )


def _check_name(param: str, name: Any) -> str:
    if name is None:
        raise _missing(param)
    if not isinstance(name, str):
        raise _wrong_type(param, "a string", name)
    if len(name) > _MAX_NAME:
        raise Invalid(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{_MAX_NAME}, but got a string with length {len(name)} instead.",
            param,
            "string_above_max_length",
        )
    if not _NAME.match(name):
        raise Invalid(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches "
            f"the pattern '{_NAME_PATTERN}'.",
            param,
            "invalid_value",
        )
    return name


# ---- top_p, stop, n --------------------------------------------------------------------------


def _check_top_p(body: dict[str, Any], reasoning: bool) -> None:
    top_p = body.get("top_p")
    if top_p is None:
        return
    if not number(top_p):
        raise _wrong_type("top_p", "a decimal", top_p)
    if reasoning and top_p != 1:
        raise Invalid(
            "Unsupported parameter: 'top_p' is not supported with this model.",
            "top_p",
            "unsupported_parameter",
        )
    if top_p > 1:
        raise Invalid(
            "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got "
            f"{_shown(top_p)} instead.",
            "top_p",
            "decimal_above_max_value",
        )
    if top_p < 0:
        raise Invalid(
            "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got "
            f"{_shown(top_p)} instead.",
            "top_p",
            "decimal_below_min_value",
        )


def _check_stop(flavour: str, body: dict[str, Any], reasoning: bool) -> None:
    stop = body.get("stop")
    if stop is None:
        return
    if not isinstance(stop, str | list):
        raise _wrong_type("stop", "one of a string or array of strings", stop)
    for j, item in enumerate(stop if isinstance(stop, list) else []):
        if not isinstance(item, str):
            if flavour == "ollama":  # Ollama's OpenAI layer (openai/openai.go)
                go_type = "float64" if number(item) else "map[string]interface {}"
                raise Invalid(f"invalid type for 'stop' field: {go_type}")
            raise _wrong_type(f"stop[{j}]", "a string", item)
    limit = _MAX_STOP.get(flavour)
    if isinstance(stop, list) and limit is not None and len(stop) > limit:
        raise Invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length {limit}, "
            f"but got an array with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )
    if reasoning:
        raise Invalid(
            "Unsupported parameter: 'stop' is not supported with this model.",
            "stop",
            "unsupported_parameter",
        )


def _check_n(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is None:
        return
    if not isinstance(n, int) or isinstance(n, bool):
        raise _wrong_type("n", "an integer", n)
    if n < 1:
        raise Invalid(
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} "
            "instead.",
            "n",
            "integer_below_min_value",
        )
    if n > _MAX_N:
        raise Invalid(
            f"Invalid 'n': integer above maximum value. Expected a value <= {_MAX_N}, but got "
            f"{n} instead.",
            "n",
            "integer_above_max_value",
        )


# ---- tools and tool_choice -------------------------------------------------------------------


def _check_tools(body: dict[str, Any]) -> tuple[str, ...] | None:
    """The function names, or None when the request has no ``tools``."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise _wrong_type("tools", "an array", tools)
    if not tools:
        raise Invalid(
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            "tools",
            "empty_array",
        )
    if len(tools) > _MAX_TOOLS:
        raise Invalid(
            f"Invalid 'tools': array too long. Expected an array with maximum length "
            f"{_MAX_TOOLS}, but got an array with length {len(tools)} instead.",
            "tools",
            "array_above_max_length",
        )
    return tuple(_check_tool(f"tools[{i}]", tool) for i, tool in enumerate(tools))


def _function_of(where: str, item: Any) -> dict[str, Any]:
    """The ``function`` object of a tool or tool call ``{"type": "function", "function"}``."""
    if not isinstance(item, dict):
        raise _wrong_type(where, "an object", item)
    kind = item.get("type")
    if kind is None:
        raise _missing(f"{where}.type")
    if kind != "function":
        raise Invalid(
            f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
            f"{where}.type",
            "invalid_value",
        )
    function = item.get("function")
    if function is None:
        raise _missing(f"{where}.function")
    if not isinstance(function, dict):
        raise _wrong_type(f"{where}.function", "an object", function)
    return function


def _check_tool(where: str, tool: Any) -> str:
    function = _function_of(where, tool)
    name = _check_name(f"{where}.function.name", function.get("name"))
    for field, expected, kind in (
        ("description", "a string", str),
        ("parameters", "an object", dict),
        ("strict", "a boolean", bool),
    ):
        value = function.get(field)
        if value is not None and not isinstance(value, kind):
            raise _wrong_type(f"{where}.function.{field}", expected, value)
    return name


def _check_tool_choice(body: dict[str, Any], names: tuple[str, ...] | None) -> str | None:
    """The function the model must call, if ``tool_choice`` forces one."""
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if names is None:
        raise Invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            "tool_choice",
        )
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise Invalid(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
                "invalid_value",
            )
        return names[0] if choice == "required" else None
    if not isinstance(choice, dict):
        raise _wrong_type("tool_choice", "one of a string or object", choice)
    kind = choice.get("type")
    if kind is None:
        raise _missing("tool_choice.type")
    if kind != "function":
        raise Invalid(
            f"Invalid value: '{kind}'. Supported values are: 'function', 'allowed_tools', and "
            "'custom'.",
            "tool_choice.type",
            "invalid_value",
        )
    function = choice.get("function")
    if function is None:
        raise _missing("tool_choice.function")
    if not isinstance(function, dict):
        raise _wrong_type("tool_choice.function", "an object", function)
    name = _check_name("tool_choice.function.name", function.get("name"))
    if name not in names:
        raise Invalid(
            f"Invalid value for 'tool_choice': function '{name}' is not one of the functions "
            "in 'tools'.",
            "tool_choice",
            "invalid_value",
        )
    return name


# ---- response_format -------------------------------------------------------------------------


def _check_response_format(flavour: str, body: dict[str, Any]) -> str | None:
    """The format type asked for ("text", "json_object", "json_schema") or None."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _wrong_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind is None:
        raise _missing("response_format.type")
    if kind not in _FORMATS:
        raise Invalid(
            f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and "
            "'text'.",
            "response_format.type",
            "invalid_value",
        )
    if kind != "json_schema":
        return str(kind)
    if flavour == "deepseek":  # DeepSeek takes json_object only (api-docs.deepseek.com)
        raise Invalid("This response_format type is unavailable now")
    schema = fmt.get("json_schema")
    if schema is None:
        raise _missing("response_format.json_schema")
    if not isinstance(schema, dict):
        raise _wrong_type("response_format.json_schema", "an object", schema)
    _check_name("response_format.json_schema.name", schema.get("name"))
    inner = schema.get("schema")
    if inner is not None and not isinstance(inner, dict):
        raise _wrong_type("response_format.json_schema.schema", "an object", inner)
    strict = schema.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _wrong_type("response_format.json_schema.strict", "a boolean", strict)
    return "json_schema"


def check_options(
    flavour: str, body: dict[str, Any], reasoning: bool, texts: list[str]
) -> ToolPlan:
    """``top_p``, ``stop``, ``n``, ``tools``, ``tool_choice`` and ``response_format``.
    ``reasoning``: an OpenAI reasoning model (refuses top_p and stop); ``texts``: the text of
    every message (json_object needs the word "json" in one)."""
    _check_top_p(body, reasoning)
    _check_stop(flavour, body, reasoning)
    _check_n(body)
    names = _check_tools(body)
    forced = _check_tool_choice(body, names)
    fmt = _check_response_format(flavour, body)
    if fmt == "json_object" and not any("json" in text.lower() for text in texts):
        raise Invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.",
            "messages",
        )
    return ToolPlan(names or (), forced, fmt in ("json_object", "json_schema"))


# ---- the tool-call turns of messages ---------------------------------------------------------


def _assistant_calls(i: int, message: dict[str, Any]) -> list[str]:
    """The ids of an assistant turn's ``tool_calls`` (checked), [] when it has none."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise _wrong_type(where, "an array", calls)
    if not calls:
        raise Invalid(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            where,
            "empty_array",
        )
    return [_check_call(f"{where}[{j}]", call) for j, call in enumerate(calls)]


def _check_call(at: str, call: Any) -> str:
    """One ``tool_calls`` item of an assistant turn; its id."""
    function = _function_of(at, call)
    call_id = call.get("id")
    if call_id is None:
        raise _missing(f"{at}.id")
    if not isinstance(call_id, str):
        raise _wrong_type(f"{at}.id", "a string", call_id)
    _check_name(f"{at}.function.name", function.get("name"))
    arguments = function.get("arguments")
    if arguments is None:
        raise _missing(f"{at}.function.arguments")
    if not isinstance(arguments, str):
        raise _wrong_type(f"{at}.function.arguments", "a string", arguments)
    return call_id


def _unanswered(at: int, remaining: list[str]) -> Invalid:
    return Invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(remaining),
        f"messages.[{at}].role",
    )


def check_messages(messages: list[dict[str, Any]]) -> None:
    """Content presence and the tool-call turns: every ``tool`` message answers an id of the
    assistant turn's ``tool_calls`` right before it (other tool messages may sit between), and
    every id of those ``tool_calls`` is answered before the next other message."""
    ids: list[str] | None = None  # the open assistant turn's tool call ids
    remaining: list[str] = []
    opened_at = 0
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                raise Invalid(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a "
                    "'tool_call_id'.",
                    f"messages.[{i}].tool_call_id",
                )
            if not isinstance(call_id, str):
                raise _wrong_type(f"messages[{i}].tool_call_id", "a string", call_id)
            if len(call_id) > _MAX_TOOL_CALL_ID:
                raise Invalid(
                    f"Invalid 'messages[{i}].tool_call_id': string too long. Expected a string "
                    f"with maximum length {_MAX_TOOL_CALL_ID}, but got a string with length "
                    f"{len(call_id)} instead.",
                    f"messages[{i}].tool_call_id",
                    "string_above_max_length",
                )
            if ids is None:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in ids:
                raise Invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in "
                    "'tool_calls' of previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            if call_id in remaining:
                remaining.remove(call_id)
            _check_content(i, role, message, has_calls=False)
            continue
        if ids is not None and remaining:
            raise _unanswered(opened_at, remaining)
        calls = _assistant_calls(i, message) if role == "assistant" else []
        _check_content(i, role, message, has_calls=bool(calls))
        ids, remaining, opened_at = (calls, list(calls), i) if calls else (None, [], 0)
    if ids is not None and remaining:
        raise _unanswered(opened_at, remaining)


def _check_content(i: int, role: Any, message: dict[str, Any], *, has_calls: bool) -> None:
    if message.get("content") is not None:
        return
    if role == "assistant":
        if has_calls or message.get("function_call") is not None:
            return  # content is optional beside tool_calls
        raise Invalid(
            "Invalid value for 'content': expected a string, got null.",
            f"messages.[{i}].content",
        )
    if "content" not in message:
        raise _missing(f"messages[{i}].content")
    raise Invalid(
        f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
        "objects, but got null instead.",
        f"messages[{i}].content",
        "invalid_type",
    )
