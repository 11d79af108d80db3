"""Request checks that need no server: body parsing (JSON and forms) and the model's seconds/size
limits read off a real tiny model."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from starlette.requests import Request

from reelforge.errors import (
    InvalidGenerationSettingsError,
    PayloadTooLargeError,
    UserInputError,
)
from reelforge.platform.api.video_request import parse_create_request
from reelforge.platform.serving.generation_limits import (
    capabilities_of,
    check_seconds,
    check_size,
)


def request_with(body: bytes, content_type: str) -> Request:
    sent = [False]

    async def receive():
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    return Request(
        {"type": "http", "method": "POST", "path": "/v1/videos", "headers": headers, "query_string": b""}, receive
    )


def parse_body(body: bytes, content_type: str = "application/json", max_bytes: int = 10_000, max_reference: int = 0):
    return asyncio.run(parse_create_request(request_with(body, content_type), max_bytes, max_reference))


def parse(body: bytes, content_type: str = "application/json", max_bytes: int = 10_000):
    return parse_body(body, content_type, max_bytes).request


def test_json_and_form_bodies_give_the_same_request():
    from_json = parse(json.dumps({"prompt": "a red circle", "seconds": "2", "size": "32x32", "seed": 4}).encode())
    form = b"prompt=a+red+circle&seconds=2&size=32x32&seed=4"
    from_form = parse(form, "application/x-www-form-urlencoded")
    assert from_json == from_form and from_form.seed == 4


@pytest.mark.parametrize(
    ("body", "content_type", "error", "needle"),
    [
        (b"{", "application/json", UserInputError, "not valid JSON"),
        (b"[1]", "application/json", UserInputError, "must be a JSON object"),
        (b'{"prompt": "x", "fps": 3}', "application/json", UserInputError, "unknown parameter 'fps'"),
        (b'{"prompt": "x", "seed": "lucky"}', "application/json", UserInputError, "invalid value for 'seed'"),
        (b"{}", "application/json", UserInputError, "missing required parameter 'prompt'"),
        (b"prompt=x", "text/plain", UserInputError, "unsupported content type"),
        (b'{"prompt": "' + b"x" * 20_000 + b'"}', "application/json", PayloadTooLargeError, "at most 10000"),
    ],
)
def test_bad_bodies_name_what_is_wrong(body, content_type, error, needle):
    with pytest.raises(error, match=needle):
        parse(body, content_type)


def test_limits_come_from_the_model(tiny_model):
    caps = capabilities_of(tiny_model)
    d = tiny_model.defaults
    assert caps.fps == d.fps and caps.default_size == f"{d.width}x{d.height}"
    assert all(caps.frames_for(s) <= d.max_frames for s in caps.allowed_seconds)
    assert check_seconds(caps, None) == caps.default_seconds
    assert check_seconds(caps, str(caps.allowed_seconds[-1])) == caps.allowed_seconds[-1]
    with pytest.raises(InvalidGenerationSettingsError, match="allowed values") as info:
        check_seconds(caps, "1.5")
    assert info.value.param == "seconds"
    m = caps.size_multiple
    assert check_size(caps, f"{2 * m}x{m}") == (2 * m, m)
    for bad in (f"{m + 1}x{m}", f"{caps.max_width + m}x{m}", "0x0", "big"):
        with pytest.raises(InvalidGenerationSettingsError, match=f"multiple of {m}"):
            check_size(caps, bad)


def _multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "reelforgeboundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f.png"\r\n'
        parts.append(head.encode() + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_input_reference_comes_back_beside_the_request():
    image = b"\x89PNG" + b"x" * 5000
    body, content_type = _multipart({"prompt": "moving left"}, {"input_reference": image})
    parsed = parse_body(body, content_type, max_bytes=1000, max_reference=10_000)
    assert parsed.request.prompt == "moving left" and parsed.reference == image
    with pytest.raises(PayloadTooLargeError):  # the image budget is separate, and bounded too
        parse_body(body, content_type, max_bytes=1000, max_reference=1000)


@pytest.mark.parametrize(
    ("fields", "files", "needle"),
    [
        ({"prompt": "x"}, {"other": b"data"}, "file field 'other' is not supported"),
        ({"prompt": "x", "input_reference": "https://example.com/a.png"}, {}, "must be an image file upload or"),
    ],
)
def test_multipart_file_mistakes_name_the_field(fields, files, needle):
    body, content_type = _multipart(fields, files)
    with pytest.raises(UserInputError, match=needle):
        parse_body(body, content_type, max_reference=10_000)


def test_non_file_input_references_take_only_data_urls():
    png = b"\x89PNG fake bytes"
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    body = json.dumps({"prompt": "x", "input_reference": {"image_url": data_url}}).encode()
    assert parse_body(body, max_reference=1000).reference == png
    form, content_type = _multipart({"prompt": "x", "input_reference[image_url]": data_url}, {})
    assert parse_body(form, content_type, max_reference=1000).reference == png
    for value, needle in (
        ("aGVsbG8=", "must be an image file upload or"),
        ({"image_url": "https://example.com/a.png"}, "does not fetch remote images"),
        ({"file_id": "file_123"}, "file_id is not supported"),
        ({"image_url": "data:image/png;base64,!!!"}, "not valid base64"),
    ):
        with pytest.raises(UserInputError, match=needle) as info:
            parse_body(json.dumps({"prompt": "x", "input_reference": value}).encode(), max_reference=1000)
        assert info.value.param == "input_reference"
    with pytest.raises(PayloadTooLargeError):
        big = "data:image/png;base64," + base64.b64encode(b"x" * 5000).decode()
        parse_body(json.dumps({"prompt": "x", "input_reference": {"image_url": big}}).encode(), max_reference=1000)
