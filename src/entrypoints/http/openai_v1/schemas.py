"""Request and response bodies of OpenAI's Chat Completions and Models APIs, as Parley
serves them under ``/v1``. Fields Parley does not use are accepted and ignored, as
OpenAI's API ignores what it does not know; the shapes follow openai-python's types
(``ChatCompletion``, ``ChatCompletionChunk``, ``Model``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from entrypoints.http.schema_docs import NO_NUL, ImageUrl, documented

# NUL is refused in every string field (bodies.py), as in Parley's other dialects.
Text = Annotated[str, documented(pattern=NO_NUL)]
# Litestar leaves a bound of 0 out of the document (it tests the bound for truth), so
# these say their minimum again.
Probability = Annotated[float, msgspec.Meta(ge=0, le=1), documented(minimum=0, maximum=1)]
Temperature = Annotated[float, msgspec.Meta(ge=0, le=2), documented(minimum=0, maximum=2)]
TokenLimit = Annotated[int, msgspec.Meta(ge=1)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
FunctionName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class TextPart(msgspec.Struct, tag_field="type", tag="text"):
    text: Text


class ImageUrlIn(msgspec.Struct):
    url: ImageUrl
    detail: str | None = None


class ImagePart(msgspec.Struct, tag_field="type", tag="image_url"):
    image_url: ImageUrlIn


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str = ""


class ToolCallIn(msgspec.Struct):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


TextContent = Text | list[TextPart]


class SystemMessage(msgspec.Struct, tag_field="role", tag="system"):
    content: TextContent
    name: str | None = None


class DeveloperMessage(msgspec.Struct, tag_field="role", tag="developer"):
    """OpenAI's newer name for a system message."""

    content: TextContent
    name: str | None = None


class UserMessage(msgspec.Struct, tag_field="role", tag="user"):
    """At most one image part (a limit of Parley's, which keeps one image a message)."""

    content: Text | list[TextPart | ImagePart]
    name: str | None = None


class AssistantMessageIn(msgspec.Struct, tag_field="role", tag="assistant"):
    content: TextContent | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None


class ToolMessage(msgspec.Struct, tag_field="role", tag="tool"):
    content: TextContent
    tool_call_id: Text


MessageIn = SystemMessage | DeveloperMessage | UserMessage | AssistantMessageIn | ToolMessage


class FunctionIn(msgspec.Struct, omit_defaults=True):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(msgspec.Struct):
    """Passed on as given: ``type`` is always written (providers require it)."""

    function: FunctionIn
    type: Literal["function"] = "function"


class NamedFunction(msgspec.Struct):
    name: FunctionName


class NamedToolChoice(msgspec.Struct):
    function: NamedFunction
    type: Literal["function"] = "function"


class ResponseFormatIn(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatCompletionIn(msgspec.Struct):
    """``metadata.conversation_id`` (or the ``X-Parley-Conversation`` header) binds the
    call to one of the caller's Parley conversations."""

    model: ModelName
    messages: Annotated[list[MessageIn], msgspec.Meta(min_length=1)]
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    # Litestar documents a union member's constraints on the union: said once, here.
    stop: Annotated[
        str | Annotated[list[str], msgspec.Meta(max_length=4)] | None,
        documented(pattern=NO_NUL, maxItems=4, items={"type": "string", "pattern": NO_NUL}),
    ] = None
    n: Annotated[int, msgspec.Meta(ge=1, le=1, description="Only 1: one choice.")] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: Text | None = None
    tools: Annotated[list[ToolIn], msgspec.Meta(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormatIn | None = None
    metadata: (
        Annotated[
            dict[str, str],
            documented(
                properties={"conversation_id": {"type": "string", "pattern": "^[0-9]{1,18}$"}}
            ),
        ]
        | None
    ) = None


class FunctionCallOut(msgspec.Struct):
    name: str
    arguments: str


class ToolCallOut(msgspec.Struct):
    id: str
    function: FunctionCallOut
    type: str = "function"


class AssistantMessage(msgspec.Struct):
    content: str | None
    refusal: str | None = None
    role: str = "assistant"
    tool_calls: list[ToolCallOut] | msgspec.UnsetType = msgspec.UNSET


class Choice(msgspec.Struct):
    message: AssistantMessage
    finish_reason: str
    index: int = 0
    logprobs: None = None


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: CompletionTokensDetails


class ChatCompletionOut(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    object: str = "chat.completion"
    system_fingerprint: None = None


class ToolCallPieceOut(msgspec.Struct, omit_defaults=True):
    index: int
    id: str | None = None
    type: str | None = None
    function: dict[str, str] | None = None


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallPieceOut] | None = None


class ChunkChoice(msgspec.Struct):
    delta: Delta
    finish_reason: str | None = None
    index: int = 0
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct):
    """One ``data:`` line of a stream; with ``include_usage``, ``usage`` is null in every
    chunk but the last, which has no choices."""

    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: str = "chat.completion.chunk"
    system_fingerprint: None = None
    usage: Usage | msgspec.UnsetType | None = msgspec.UNSET


class ModelOut(msgspec.Struct):
    id: str
    owned_by: str
    created: int = 0
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[ModelOut]
    object: str = "list"
