"""Errors only the HTTP API raises: authentication, tenant-scoped lookups, quotas, request size.

Together with the `UserInputError` family they are turned into OpenAI's error shape in exactly one
place (`openai_error_body` and the handlers `video_api` installs).
"""

from __future__ import annotations

from reelforge.errors import ReelforgeError, UserInputError


class AuthenticationError(UserInputError):
    """No API key, an unknown one, or a revoked one."""

    http_status = 401
    code = "invalid_api_key"


class NotFoundError(UserInputError):
    """The id does not exist for this tenant (another tenant's id looks exactly the same)."""

    http_status = 404
    code = "not_found"


class RateLimitError(UserInputError):
    """A per-tenant quota is used up; `retry_after_s` says when to come back."""

    http_status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))
        self.headers = {"Retry-After": str(self.retry_after_s), **(headers or {})}


class PayloadTooLargeError(UserInputError):
    """The request body is bigger than the server accepts."""

    http_status = 413
    code = "request_too_large"


class VideoNotReadyError(UserInputError):
    """Content was asked for before the video completed (or after it failed)."""

    http_status = 409
    code = "video_not_ready"


class VideoExpiredError(UserInputError):
    """The video's files were deleted when it expired."""

    http_status = 410
    code = "video_expired"


def openai_error_body(error: ReelforgeError) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    if isinstance(error, RateLimitError):
        kind = "requests"
    elif isinstance(error, UserInputError):
        kind = "invalid_request_error"
    else:
        kind = "server_error"
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
