"""Why a footage file was not accepted: the reasons a report shows, named once for every stage."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RejectReason(str, Enum):
    """Why a file was not accepted; the values are what reports show."""

    UNREADABLE = "unreadable or corrupt video"
    NOT_A_VIDEO = "not a video"
    NO_CAPTION = "no caption"
    EMPTY_CAPTION = "empty caption"
    TOO_SHORT = "too short"
    TOO_SMALL = "too small"
    DUPLICATE = "duplicate content"
    CAPTION_WITHOUT_VIDEO = "caption without video"
    UNSAFE_ARCHIVE_MEMBER = "unsafe archive member"
    UNREADABLE_ARCHIVE_MEMBER = "unreadable archive member"
    CAPTION_NOT_UTF8 = "caption is not UTF-8 text"
    FILE_TOO_LARGE = "file over the size limit"
    TOO_LONG = "longer than the duration limit"
    TOO_MANY_PIXELS = "more pixels than the resolution limit"
    TOO_MANY_FILES = "over the limit of videos per upload"
    ARCHIVE_BUDGET = "over the archive's limits"


@dataclass(frozen=True)
class RejectedFile:
    """A file that was not accepted, and why."""

    file: str
    reason: RejectReason
    detail: str = ""
