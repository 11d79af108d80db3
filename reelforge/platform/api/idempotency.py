"""`Idempotency-Key` on creates: a retried request (the `openai` client retries timeouts) gets the
first response instead of making a second video, file or job."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from reelforge.errors import UserInputError
from reelforge.platform.api.dependencies import Caller, PlatformServices
from reelforge.platform.stores.idempotency_keys import PENDING_TAKEOVER_S

Result = TypeVar("Result", bound=BaseModel)
HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII without spaces, as header values are


def idempotency_key(request: Request) -> str | None:
    """The request's key, or None; a 400 for one that is empty, too long or not printable ASCII."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY.fullmatch(key):
        raise UserInputError(f"{HEADER} must be 1 to 255 printable ASCII characters without spaces", param=HEADER)
    return key


def idempotent_id(prefix: str, caller: Caller, operation: str, key: str | None) -> str | None:
    """The id a keyed create gives what it makes: the same for every retry, so a retry that reruns a
    create whose server died finds the object it made instead of making a second one."""
    if key is None:
        return None
    digest = hashlib.sha256("\x1f".join((caller.tenant.name, operation, key)).encode()).hexdigest()
    return f"{prefix}{digest[:24]}"


def fingerprint(*parts: str) -> str:
    """What makes two requests the same request: a hash of their canonical forms."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


async def run_once(
    services: PlatformServices,
    caller: Caller,
    operation: str,
    key: str | None,
    request_fingerprint: str,
    produce: Callable[[], Awaitable[Result]],
    takeover_after_s: float = PENDING_TAKEOVER_S,
) -> Result | JSONResponse:
    """`produce()` once per (tenant, operation, key); a repeat of the same request replays its response.

    `takeover_after_s` must exceed the longest `produce()`: a key held longer belongs to a dead server.
    """
    if key is None:
        return await produce()
    store = services.idempotency
    tenant = caller.tenant.name
    first = await run_in_threadpool(store.begin, tenant, operation, key, request_fingerprint, takeover_after_s)
    if first is not None:
        return JSONResponse(first.response, status_code=first.status_code, headers={"Idempotent-Replayed": "true"})
    try:
        result = await produce()
    except BaseException:
        await run_in_threadpool(store.release, tenant, operation, key)
        raise
    await run_in_threadpool(store.finish, tenant, operation, key, 200, result.model_dump(mode="json"))
    return result
