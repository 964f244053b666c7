"""Request bodies: read within a size and a time limit whatever the framing, parsed strictly,
validated by a schema. Every failure is a 4xx whose reason is safe to print: it never contains
the raw bad value."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ..config import Settings
from .deps import settings_of
from .schemas import Problem, ValidationProblem

Model = TypeVar("Model", bound=BaseModel)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The answers a route with a body can give besides its own: documented in OpenAPI.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "the body is not valid JSON (or JSON with NaN, Infinity, too deep)",
    },
    408: {"model": Problem, "description": "the body did not arrive in time"},
    413: {"model": Problem, "description": "the body is larger than the limit"},
    415: {"model": Problem, "description": "unsupported Content-Type"},
    422: {"model": ValidationProblem, "description": "a field is missing or wrong"},
}


def body_schema(model: type[BaseModel], form: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``model`` as JSON (or an HTML form's fields)."""
    schema = model.model_json_schema()
    content = {"application/json": {"schema": schema}}
    if form:
        content["application/x-www-form-urlencoded"] = {"schema": _form_schema(schema)}
    return {"requestBody": {"required": True, "content": content}}


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A form has no null: an optional field is left out (or left empty) instead."""
    properties = {}
    for name, field in schema.get("properties", {}).items():
        if "anyOf" in field:
            options = [o for o in field["anyOf"] if o.get("type") != "null"]
            field = {k: v for k, v in field.items() if k not in ("anyOf", "default")}
            field.update(options[0] if len(options) == 1 else {"anyOf": options})
        properties[name] = field
    return {**schema, "properties": properties}


async def read_limited(request: Request, settings: Settings) -> bytes:
    """The body, refused with 413 as soon as it passes ``max_body_bytes`` (chunked or not, what
    Content-Length announces is not trusted), and with 408 when it has not all arrived within
    ``body_timeout_s`` (a client that announces more than it sends)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    deadline = asyncio.get_running_loop().time() + settings.body_timeout_s
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(remaining, 0.001))
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise HTTPException(
                408, f"request body incomplete after {settings.body_timeout_s:g} s"
            ) from None
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Starlette's form parser reads the body from
    return body


class _Refused(ValueError):
    """A value json.loads would take and JSON does not allow."""


def _reject_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number too large to represent")
    return value


def loads_strict(raw: bytes) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number that overflows, no lone
    surrogate; and not nested deeper than Python can read."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise HTTPException(400, "request body is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise HTTPException(
            400, f"request body is not valid JSON: {error.msg} at line {error.lineno}"
        ) from None
    except RecursionError:
        raise HTTPException(400, "request body is nested too deeply") from None
    except _Refused as error:  # NaN, Infinity, 1e999
        raise HTTPException(400, f"request body is not valid JSON: {error}") from None
    except ValueError:  # an integer of thousands of digits (Python refuses to convert it)
        raise HTTPException(400, "request body has a number with too many digits") from None


async def parse_body(request: Request, model: type[Model], settings: Settings) -> Model:
    """JSON or an HTML form's fields, validated by ``model``; errors name the field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form = content_type in FORM_TYPES
    if content_type != "application/json" and not form:
        raise HTTPException(
            415,
            f"unsupported Content-Type {(content_type or '(none)')[:100]!r}; "
            "send application/json or application/x-www-form-urlencoded",
        )
    raw = await read_limited(request, settings)
    data: Any
    if form:
        try:
            fields = await request.form()
        except (ValueError, UnicodeDecodeError, AssertionError):
            raise HTTPException(400, "request body is not a valid form") from None
        # An HTML form also posts its buttons and hidden fields: keep only the fields we know.
        data = {
            key: value
            for key, value in fields.items()
            if key in model.model_fields and isinstance(value, str)
        }
    else:
        data = loads_strict(raw)
        if not isinstance(data, dict):
            raise RequestValidationError(
                [{"type": "dict_type", "loc": ("body",), "msg": "must be a JSON object"}]
            )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            error.errors(include_url=False, include_context=False, include_input=False)
        ) from None


async def read_form(request: Request) -> dict[str, str]:
    """An HTML form's text fields (a page's), read within the body limits; read once."""
    cached: dict[str, str] | None = getattr(request.state, "form_fields", None)
    if cached is not None:
        return cached
    settings = settings_of(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        raise HTTPException(415, "send the page's form (application/x-www-form-urlencoded)")
    await read_limited(request, settings)
    try:
        fields = await request.form(max_files=0, max_fields=50)
    except (ValueError, UnicodeDecodeError, AssertionError, HTTPException):
        raise HTTPException(400, "request body is not a valid form") from None
    result = {key: value for key, value in fields.items() if isinstance(value, str)}
    request.state.form_fields = result
    return result


def json_body(
    model: type[Model], empty_allowed: bool = False
) -> Callable[[Request], Awaitable[Model]]:
    """A dependency that reads ``model`` from the body, as ``parse_body`` does; with
    ``empty_allowed``, no body at all reads as ``{}`` (every field left at its default)."""

    async def dependency(request: Request) -> Model:
        settings = settings_of(request)
        if (
            empty_allowed
            and not request.headers.get("content-type")
            and request.headers.get("content-length", "0") == "0"
            and "chunked" not in request.headers.get("transfer-encoding", "")
        ):
            return model.model_validate({})
        return await parse_body(request, model, settings)

    return dependency
