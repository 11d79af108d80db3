"""The OpenAI error shape and the handlers that produce it: the one place errors become responses.

Every `ReelforgeError` (typed in `reelforge.errors`), every request that fails validation (a body
model or a query parameter) and every unknown route leaves the API as
`{"error": {"message", "type", "param", "code"}}`; nothing else does.
"""

from __future__ import annotations

import logging
import re
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from reelforge.errors import RateLimitError, ReelforgeError, UserInputError

logger = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)

FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Parts of a pydantic error location that are not field names: union members and request parts.
NOT_FIELDS = {"int", "float", "str", "bool", "dict", "list", "none", "body", "query", "path", "header"}
MAX_SHOWN_INPUT = 80  # characters of a rejected value echoed back (a 1 MB prompt is not)


def openai_error_body(error: ReelforgeError) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    if isinstance(error, RateLimitError):
        kind = "requests"
    elif isinstance(error, UserInputError):
        kind = "invalid_request_error"
    else:
        kind = "server_error"
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}


def field_error(error: dict) -> UserInputError:
    """One pydantic error of a request (body field or query parameter) as a UserInputError naming the field."""
    parts = [str(p) for p in error.get("loc", ()) if FIELD_NAME.fullmatch(str(p)) and str(p) not in NOT_FIELDS]
    field = ".".join(parts) or None
    if error["type"] == "extra_forbidden":
        return UserInputError(f"unknown parameter {field!r}", param=field)
    if error["type"] == "missing":
        return UserInputError(f"missing required parameter {field!r}", param=field)
    shown = repr(error.get("input"))
    if len(shown) > MAX_SHOWN_INPUT:
        shown = shown[:MAX_SHOWN_INPUT] + "..."
    return UserInputError(f"invalid value for {field!r}: {error['msg']} (got {shown})", param=field)


def validate_request(model: type[Model], data: dict) -> Model:
    """`data` as `model`, or a UserInputError naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc.errors()[0]) from None


def error_response(error: ReelforgeError) -> JSONResponse:
    """The response for a typed error, with Retry-After and rate headers on a 429."""
    headers = error.headers if isinstance(error, RateLimitError) else None
    return JSONResponse(openai_error_body(error), status_code=error.http_status, headers=headers)


async def _reelforge_error(_request: Request, exc: ReelforgeError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.error("internal error: %s", exc.message)
    return error_response(exc)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(field_error(exc.errors()[0]))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
    return JSONResponse(body, status_code=exc.status_code)


async def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error in the API", exc_info=exc)
    return error_response(ReelforgeError("the server failed to handle this request; it has been logged"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can meet through the OpenAI error shape."""
    app.add_exception_handler(ReelforgeError, _reelforge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
