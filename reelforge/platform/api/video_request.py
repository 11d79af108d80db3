"""`POST /v1/videos` bodies: JSON or multipart/form-data (the `openai` client sends the latter).

Both become one `VideoCreateRequest`; a malformed body, an unknown field or a wrong type is a 400
that names the field, in OpenAI's error shape.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile
from starlette.requests import Request

from reelforge.errors import PayloadTooLargeError
from reelforge.platform.api.errors import UserInputError, validate_request


class VideoCreateRequest(BaseModel):
    """The create fields: OpenAI's prompt/model/seconds/size plus our seed, steps, guidance."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    prompt: str
    model: str | None = None
    seconds: str | int | None = None
    size: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing more than `max_bytes` before reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"request body is {int(declared)} bytes; at most {max_bytes} are accepted")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise PayloadTooLargeError(f"request body is larger than {max_bytes} bytes")
    # Starlette's form parser reads `_body` when it is set; the stream itself is spent now.
    request._body = bytes(body)
    return request._body


async def read_json_object(request: Request, max_bytes: int) -> dict:
    """The body as a JSON object; malformed JSON or another JSON type is a UserInputError."""
    body = await read_body(request, max_bytes)
    try:
        data = json.loads(body or b"")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UserInputError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


async def parse_create_request(request: Request, max_bytes: int) -> VideoCreateRequest:
    """Parse a create body by content type; every problem is a UserInputError naming the field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type == "":
        data = await read_json_object(request, max_bytes)
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        await read_body(request, max_bytes)  # enforces the limit; Starlette re-reads the cached body
        try:
            form = await request.form()
        except Exception as exc:  # Starlette raises several parser errors for broken multipart bodies
            raise UserInputError(f"request body is not valid {content_type}: {exc}") from exc
        data = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                raise UserInputError(
                    f"file field {key!r} is not supported: reelforge models are text-to-video", param=key
                )
            data[key] = value
    else:
        raise UserInputError(f"unsupported content type {content_type!r}; send application/json or multipart/form-data")
    if "input_reference" in data:
        raise UserInputError(
            "input_reference is not supported: reelforge models are text-to-video", param="input_reference"
        )
    return validate_request(VideoCreateRequest, data)
