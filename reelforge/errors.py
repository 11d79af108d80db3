"""Typed errors raised at reelforge's boundaries.

Every error a user can cause derives from `UserInputError`; the CLI maps it to exit code 2
and the API to a 4xx response, once, in one place each. Anything else is a bug (exit code 1).
"""

from __future__ import annotations


class ReelforgeError(Exception):
    """Base class of every error reelforge raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the request field at fault, for the API's error shape


class UserInputError(ReelforgeError):
    """The request, file or setting given by the user is not acceptable; the message says why."""

    exit_code = 2
    http_status = 400
    code = "invalid_request_error"


class UnknownModelError(UserInputError):
    """A model name is neither a preset nor a diffusers-format directory."""

    http_status = 404
    code = "model_not_found"


class CheckpointNotFoundError(UserInputError):
    """A preset's checkpoint is not on this machine; the message says what to download and where."""

    code = "model_not_available"


class InvalidGenerationSettingsError(UserInputError):
    """Size, frame count, steps or guidance do not fit the model."""

    code = "invalid_generation_settings"


class VideoDecodeError(UserInputError):
    """A file is missing, corrupt, or holds no decodable video stream."""

    code = "invalid_video"

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidReferenceImageError(UserInputError):
    """A first-frame image is not an image, or too small, huge, animated or of the wrong shape."""

    code = "invalid_image"

    def __init__(self, message: str, param: str | None = "input_reference") -> None:
        super().__init__(message, param)


class InvalidLoraConfigError(UserInputError):
    """LoRA rank, alpha, dropout or target modules are not usable."""

    code = "invalid_lora_config"


class AdapterError(UserInputError):
    """A LoRA adapter is missing, unreadable, or does not fit the base model."""

    code = "invalid_adapter"


class VerificationFailedError(ReelforgeError):
    """A video's provenance did not check out: tampered, untrusted, or not marked by this platform."""

    exit_code = 3
    http_status = 422
    code = "verification_failed"


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


class FaceDetectorUnavailableError(ReelforgeError):
    """The installed OpenCV carries no Haar cascades (a build without `cv2.data`): an installation fault."""

    code = "face_detector_unavailable"


class ConsentRequiredError(UserInputError):
    """Training footage shows people's faces and declares no consent of the people shown."""

    code = "consent_required"


class ReviewDecisionError(UserInputError):
    """A review decision on a video that is not waiting for one (never held, or already decided)."""

    http_status = 409
    code = "not_held_for_review"
