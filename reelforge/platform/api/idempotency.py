"""`Idempotency-Key` on creates: a retried request (the `openai` client retries timeouts) gets the
first response instead of making a second video, file or job."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from reelforge.errors import UserInputError
from reelforge.platform.api.dependencies import Caller, PlatformServices
from reelforge.platform.stores.idempotency_keys import IdempotencyStore, KeyHold

logger = logging.getLogger(__name__)

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
) -> Result | JSONResponse:
    """`produce()` once per (tenant, operation, key); a repeat of the same request replays its response.

    While `produce()` runs, its hold on the key is renewed, so a retry gets a 409 for as long as it
    runs, and takes the key over within `idempotency_lease_s` of its server dying.
    """
    if key is None:
        return await produce()
    store = services.idempotency
    lease_s = services.config.idempotency_lease_s
    first = await run_in_threadpool(store.begin, caller.tenant.name, operation, key, request_fingerprint, lease_s)
    if not isinstance(first, KeyHold):
        return JSONResponse(first.response, status_code=first.status_code, headers={"Idempotent-Replayed": "true"})
    hold = first
    renewing = asyncio.create_task(_keep_renewed(store, hold, lease_s / 3))
    try:
        result = await produce()
    except BaseException:
        renewing.cancel()
        await run_in_threadpool(store.release, hold)
        raise
    renewing.cancel()
    await run_in_threadpool(store.finish, hold, 200, result.model_dump(mode="json"))
    return result


async def _keep_renewed(store: IdempotencyStore, hold: KeyHold, every_s: float) -> None:
    """Renew `hold` every `every_s` until cancelled, or until it was taken over."""
    while True:
        await asyncio.sleep(every_s)
        try:
            renewed = await run_in_threadpool(store.renew, hold)
        except Exception:  # a database blip: this renewal is missed, the next may land within the lease
            logger.warning("could not renew the Idempotency-Key hold of a %s create", hold.operation, exc_info=True)
            continue
        if not renewed:
            logger.warning("a retry took over the Idempotency-Key of a %s create still running", hold.operation)
            return
