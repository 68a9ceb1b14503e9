"""Request bodies decoded with every failing field reported at once.

msgspec stops at the first error; clients of a DRF-style API expect all of them
(``{"username": [...], "password": [...]}``). ``CheckedBody`` is a Litestar DTO that keeps
the msgspec Struct as the documented schema and decodes field by field."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

from domain.errors import DomainError, InvalidInput

S = TypeVar("S", bound=msgspec.Struct)

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
UNKNOWN = "Unknown field."


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    default_message = 'Send the body as JSON, with "Content-Type: application/json".'


class InvalidJson(InvalidInput):
    code = "parse_error"

    def __init__(self, message: str) -> None:
        super().__init__({}, message)


# msgspec computes a Struct's fields by reflection on every call (~2% of a chat request).
_fields_of = functools.cache(msgspec.structs.fields)


def decode_body(raw: bytes, struct_type: type[S], *, nested_keys: bool = False) -> S:
    """``nested_keys``: an error inside a field is keyed by its path (``messages[0].role``,
    as OpenAI's ``param`` names it) rather than by the field."""
    try:
        document = msgspec.json.decode(raw) if raw.strip() else {}
    except msgspec.DecodeError as error:
        raise InvalidJson(f"JSON parse error - {error}") from None
    except RecursionError:
        raise InvalidJson("JSON parse error - nested too deeply.") from None
    except UnicodeDecodeError:
        raise InvalidJson("JSON parse error - the body is not valid UTF-8.") from None
    if not isinstance(document, dict):
        raise InvalidInput(
            {
                "non_field_errors": [
                    f"Invalid data. Expected a dictionary, but got {type(document).__name__}."
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if struct_type.__struct_config__.forbid_unknown_fields:
        # A body whose misspelt field would silently mean "no limit" says it is strict.
        known = {field.encode_name for field in _fields_of(struct_type)}
        errors |= {key: [UNKNOWN] for key in document if key not in known}
    for field in _fields_of(struct_type):
        if field.encode_name not in document:
            if field.required:
                errors[field.encode_name] = [REQUIRED]
            continue
        value = document[field.encode_name]
        if isinstance(value, str) and "\x00" in value:
            # PostgreSQL cannot store NUL in text; nobody types one.
            errors[field.encode_name] = ["Null characters are not allowed."]
            continue
        try:
            values[field.name] = _convert(value, field.type)
        except msgspec.ValidationError as error:
            key = field.encode_name + (_inner_path(error) if nested_keys else "")
            errors[key] = [NOT_NULL if value is None else _readable(error)]
    if errors:
        raise InvalidInput(errors)
    return struct_type(**values)


def _convert(value: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError:
        # JSON does not tell 5 from 5.0, and JSON Schema counts 5.0 as an integer.
        if isinstance(value, float) and value.is_integer():
            return msgspec.convert(int(value), kind, strict=True)
        raise


def _inner_path(error: msgspec.ValidationError) -> str:
    """``[0].role`` of msgspec's "... - at `$[0].role`"."""
    _, found, path = str(error).rpartition(" - at `$")
    return path.rstrip("`") if found else ""


def _readable(error: msgspec.ValidationError) -> str:
    message = str(error).split(" - at `", 1)[0]
    return {
        "Expected `str`, got `int`": "Not a valid string.",
        "Expected `str`, got `float`": "Not a valid string.",
        "Expected `int`, got `str`": "A valid integer is required.",
        "Expected `int`, got `float`": "A valid integer is required.",
        "Expected `float`, got `str`": "A valid number is required.",
        "Expected `bool`, got `str`": "Must be a valid boolean.",
    }.get(message, message + ".")


T = TypeVar("T", bound=msgspec.Struct)


class CheckedBody(MsgspecDTO[T]):
    """Use as ``dto=CheckedBody[SomeStruct], return_dto=None`` on a route."""

    def decode_bytes(self, value: bytes) -> Any:
        # Media types are case-insensitive (RFC 9110 §8.3.1): APPLICATION/JSON is JSON.
        content_type = self.asgi_connection.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            # Also keeps cross-site form posts (no CORS preflight) from reaching handlers.
            raise UnsupportedMediaType()
        return decode_body(value, self.model_type, nested_keys=self.nested_keys)

    nested_keys = False

    @classmethod
    def create_openapi_schema(
        # Any: Litestar passes its SchemaCreator, whose class lives in a private module.
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        schema_creator: Any,
    ) -> Reference | Schema:
        # Document the Struct itself (with its field constraints), as that is what is
        # decoded, rather than the DTO's transfer model.
        field = FieldDefinition.from_annotation(cls.model_type)
        schema: Reference | Schema = schema_creator.for_field_definition(field)
        if cls.model_type.__struct_config__.forbid_unknown_fields:
            documented = schema_creator.schema_registry.get_schema_for_field_definition(field)
            documented.additional_properties = False
        return schema


class NestedCheckedBody(CheckedBody[T]):
    """``CheckedBody`` that names an error inside a field by its path."""

    nested_keys = True
