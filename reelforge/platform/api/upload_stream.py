"""Streaming multipart uploads: the file part goes straight to storage as it arrives.

Starlette's form parser would spool the whole upload before the handler runs; here each chunk is
hashed, counted against the size limit (413 the moment it is passed) and written to the blob store.
Parsing, hashing and writing run in a worker thread, a megabyte at a time, so a large upload (to a
slow disk or an object store) never holds the event loop that every other tenant's request needs.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from reelforge.errors import PayloadTooLargeError, UserInputError

MAX_FIELD_BYTES = 64 * 1024
HANDOFF_BYTES = 1 << 20  # body bytes gathered on the event loop before a worker thread parses and writes them


@dataclass
class StreamedUpload:
    """What a multipart body held: its text fields and the one file part, stored."""

    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    bytes: int = 0
    sha256: str = ""


async def stream_multipart_upload(request: Request, open_target, max_file_bytes: int) -> StreamedUpload:
    """Parse a multipart body, writing its single file part through `open_target()` (a binary writer).

    Raises a UserInputError for a body that is not multipart, has no file or two files, and a
    PayloadTooLargeError once the file passes `max_file_bytes`.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise UserInputError("send the file as multipart/form-data with fields 'file' and 'purpose'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_file_bytes + MAX_FIELD_BYTES:
        raise PayloadTooLargeError(f"upload is {int(declared)} bytes; at most {max_file_bytes} are accepted")

    result = StreamedUpload()
    digest = hashlib.sha256()
    state: dict = {
        "headers": {},
        "field": None,
        "value": bytearray(),
        "writer": None,
        "header_field": b"",
        "header_value": b"",
    }
    errors: list[Exception] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].decode("latin-1").lower()] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        state["field"] = name
        if b"filename" in disposition:
            if result.file_field is not None:
                errors.append(UserInputError("send exactly one file per upload", param=name))
                return
            result.file_field = name
            result.filename = disposition[b"filename"].decode("utf-8", "replace")
            state["writer"] = open_target()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if errors:
            return
        chunk = data[start:end]
        if state["writer"] is not None:
            result.bytes += len(chunk)
            if result.bytes > max_file_bytes:
                errors.append(PayloadTooLargeError(f"upload is larger than {max_file_bytes} bytes"))
                return
            digest.update(chunk)
            state["writer"].write(chunk)
        else:
            state["value"] += chunk
            if len(state["value"]) > MAX_FIELD_BYTES:
                errors.append(UserInputError(f"field {state['field']!r} is too long", param=state["field"]))

    def on_part_end() -> None:
        if state["writer"] is not None:
            state["writer"].close()
            state["writer"] = None
        elif state["field"] is not None:
            result.fields[state["field"]] = state["value"].decode("utf-8", "replace")
        state["headers"], state["field"], state["value"] = {}, None, bytearray()

    parser = MultipartParser(
        options[b"boundary"],
        callbacks={
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= HANDOFF_BYTES:
                await asyncio.to_thread(parser.write, bytes(pending))
                pending.clear()
                if errors:
                    raise errors[0]
        await asyncio.to_thread(parser.write, bytes(pending))
        parser.finalize()
    except (UserInputError, PayloadTooLargeError):
        raise
    except Exception as exc:  # python-multipart's parse errors have several types
        raise UserInputError(f"request body is not valid multipart/form-data: {exc}") from exc
    finally:
        if state["writer"] is not None:
            await asyncio.to_thread(state["writer"].close)
    if errors:
        raise errors[0]
    if result.file_field is None:
        raise UserInputError("no file in the upload; send the archive in the 'file' field", param="file")
    result.sha256 = digest.hexdigest()
    return result
