"""`POST /v1/videos` bodies: JSON or multipart/form-data (the `openai` client sends the latter).

Both become one `VideoCreateRequest`; a malformed body, an unknown field or a wrong type is a 400
that names the field, in OpenAI's error shape. A multipart body may carry one file, the first frame
`input_reference`, whose bytes come back beside the request; it is checked and fitted later, once
the model and size are known (`reference_image`). `POST /v1/videos/{id}/remix` takes a
`VideoRemixRequest`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, field_validator
from starlette.datastructures import UploadFile
from starlette.requests import Request

from reelforge.errors import PayloadTooLargeError, UserInputError
from reelforge.models.sampling import MAX_PROMPT_CHARS
from reelforge.platform.api.errors import validate_request

WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: "²" and "١٠" pass str.isdigit()
MAX_FIELD_CHARS = 300  # model ids, sizes and durations are short; a longer one is not one of ours


def _whole_number(value: object) -> object:
    """Numbers arrive as JSON numbers or as form strings; either way only plain ASCII integers pass."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, str):
        if not WHOLE_NUMBER.fullmatch(value.strip()):
            raise ValueError("must be a whole number written with the digits 0-9")
        return int(value)
    return value


def _real_number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def plain_text(value: object) -> object:
    """Text fields are valid Unicode without NUL bytes (both would break the database or the logs)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
RealNumber = Annotated[float, BeforeValidator(_real_number), Field(allow_inf_nan=False)]
ShortText = Annotated[StrictStr, Field(max_length=MAX_FIELD_CHARS)]


class VideoCreateRequest(BaseModel):
    """The create fields: OpenAI's prompt/model/seconds/size plus our seed, steps, guidance (and guidance_2).

    Every field is typed strictly and bounded in length here, before moderation, routing or the
    database see it: a boolean is not a number, and text must be valid Unicode without NUL bytes.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    prompt: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
    model: ShortText | None = None
    seconds: ShortText | StrictInt | None = None
    size: ShortText | None = None
    seed: WholeNumber | None = None
    steps: WholeNumber | None = None
    guidance: RealNumber | None = None
    # Two-expert models (Wan 2.2 A14B): the low-noise expert's scale, as diffusers' `guidance_scale_2`.
    guidance_2: RealNumber | None = None
    negative_prompt: Annotated[StrictStr, Field(max_length=MAX_PROMPT_CHARS)] | None = None

    @field_validator("prompt", "model", "seconds", "size", "negative_prompt")
    @classmethod
    def _plain_text(cls, value: object) -> object:
        return plain_text(value)


class VideoRemixRequest(BaseModel):
    """A remix: a new prompt; everything else (model, size, seconds, seed, first frame) is the source's."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]

    @field_validator("prompt")
    @classmethod
    def _plain_text(cls, value: object) -> object:
        return plain_text(value)


@dataclass(frozen=True)
class CreateBody:
    """A parsed create request and, for image-to-video, the uploaded first frame's bytes."""

    request: VideoCreateRequest
    reference: bytes | None = None


def reference_from_object(value: object, max_bytes: int) -> bytes:
    """The image bytes of a non-file `input_reference`: only `{"image_url": "data:image/...;base64,..."}`.

    Remote URLs are refused rather than fetched (the server reaches no network it was not given, and a
    fetch would be a request forgery vector), and so are `file_id` references.
    """
    if not isinstance(value, dict) or set(value) - {"image_url", "file_id"} or not value:
        raise UserInputError(
            'input_reference must be an image file upload or {"image_url": "data:image/png;base64,..."}',
            param="input_reference",
        )
    if "file_id" in value:
        raise UserInputError(
            "input_reference file_id is not supported; upload the image itself as input_reference",
            param="input_reference",
        )
    url = value["image_url"]
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url[:100]:
        raise UserInputError(
            "input_reference image_url must be a base64 data URL (data:image/png;base64,...); "
            "reelforge does not fetch remote images",
            param="input_reference",
        )
    encoded = url.split(";base64,", 1)[1]
    if len(encoded) > max_bytes * 4 // 3 + 4:
        raise PayloadTooLargeError(f"input_reference is larger than {max_bytes} bytes", param="input_reference")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        raise UserInputError("input_reference image_url is not valid base64", param="input_reference") from None


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
    except RecursionError:
        raise UserInputError("request body is nested too deeply to be a request") from None
    except ValueError as exc:  # malformed JSON, bytes that are not UTF-8, an integer of thousands of digits
        raise UserInputError(f"request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise UserInputError(f"request body must be a JSON object, got {type(data).__name__}")
    return data


async def parse_create_request(request: Request, max_bytes: int, max_reference_bytes: int = 0) -> CreateBody:
    """Parse a create body by content type; every problem is a UserInputError naming the field.

    A multipart body may be up to `max_bytes + max_reference_bytes`: the form fields plus one image.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    reference = None
    if content_type == "application/json" or content_type == "":
        data = await read_json_object(request, max_bytes + max_reference_bytes * 4 // 3)
        if "input_reference" in data:
            reference = reference_from_object(data.pop("input_reference"), max_reference_bytes)
        elif len(request._body) > max_bytes:
            raise PayloadTooLargeError(f"request body is larger than {max_bytes} bytes")
    elif content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        await read_body(request, max_bytes + max_reference_bytes)  # Starlette re-reads the cached body
        try:
            form = await request.form(max_files=2, max_fields=100)
        except Exception as exc:  # Starlette raises several parser errors for broken multipart bodies
            raise UserInputError(f"request body is not valid {content_type}: {exc}") from exc
        data = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "input_reference":
                    raise UserInputError(
                        f"file field {key!r} is not supported; the one file field is input_reference", param=key
                    )
                if reference is not None:
                    raise UserInputError("send one input_reference image", param="input_reference")
                reference = await value.read()
                continue
            if key.startswith(
                "input_reference"
            ):  # the openai client's {"image_url": ...} form: input_reference[image_url]
                field = key.removeprefix("input_reference").strip("[]") or None
                reference = reference_from_object({field: value} if field else value, max_reference_bytes)
                continue
            data[key] = value
        if len(request._body) - len(reference or b"") > max_bytes:
            raise PayloadTooLargeError(f"the form fields are larger than {max_bytes} bytes")
    else:
        raise UserInputError(f"unsupported content type {content_type!r}; send application/json or multipart/form-data")
    return CreateBody(validate_request(VideoCreateRequest, data), reference)
