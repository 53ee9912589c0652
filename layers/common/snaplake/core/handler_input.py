"""What every step handler checks first: the event is a JSON object, and its fields are what they claim.

Each check raises `InvalidEvent` naming the field, before anything is read or
written, so a malformed input fails by name instead of deep inside boto3 or
as a KeyError/TypeError (and never after part of the work was done).
"""

import re
from datetime import datetime
from typing import Any

from snaplake.core.errors import InvalidEvent
from snaplake.core.limits import S3_KEY_MAX_BYTES
from snaplake.core.names import athena_name
from snaplake.core.times import parse_iso_utc

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Percent-escapes that decode to a dot, a path separator or NUL: harmless to S3, not to the tools that read the lake.
_ESCAPED_PATH = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_MAX_KEY_BYTES = S3_KEY_MAX_BYTES


def event_object(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
    return event


def _shown(value: Any) -> str:
    return repr(value)[:120]


def text(value: Any, name: str, pattern: re.Pattern[str] | None = None) -> str:
    """A string field (matching `pattern`, when given)."""
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{name!r} must be a non-empty string, got {_shown(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidEvent(f"{name!r} is not valid: {_shown(value)}")
    return value


def integer(value: Any, name: str, low: int = 0, high: int = 2**53) -> int:
    """An integer field: a JSON number without fraction, not a boolean, not a numeric string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"{name!r} must be an integer, got {_shown(value)}")
    if not low <= value <= high:
        raise InvalidEvent(f"{name!r} must be between {low} and {high}, got {value}")
    return value


def timestamp(value: Any, name: str) -> datetime:
    """An ISO 8601 timestamp with a time zone, e.g. 2024-05-02T12:05:55Z."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{name!r} must be an ISO 8601 timestamp string, got {_shown(value)}")
    try:
        return parse_iso_utc(value)
    except ValueError as error:
        raise InvalidEvent(f"{name!r}: {error}") from None


def athena_identifier(value: Any, name: str) -> str:
    """A Glue/Athena database or table name as the pipeline writes them: `[a-z0-9_]`, at most 255 characters.

    Never made safe here: a name that needs it did not come from an earlier step.
    """
    if not isinstance(value, str) or not value or len(value) > 255 or athena_name(value) != value:
        raise InvalidEvent(f"{name!r} must be an Athena name of lower-case letters, digits and '_', got {_shown(value)}")
    return value


def bucket(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _BUCKET.fullmatch(value):
        raise InvalidEvent(f"{name!r} must be an S3 bucket name, got {_shown(value)}")
    return value


def s3_key(value: Any, name: str, folder: bool = False) -> str:
    """An S3 key (a folder prefix ending in '/' when `folder`) that means one object, literally.

    Refused: a leading '/', empty, '.' or '..' segments ('//'), control characters,
    percent-escapes of '.', '/', '\\' or NUL, text that is not valid UTF-8 and
    keys longer than S3 allows.
    """
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{name!r} must be a non-empty S3 key, got {_shown(value)}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidEvent(f"{name!r} is not valid UTF-8: {_shown(value)}") from None
    if folder and not value.endswith("/"):
        raise InvalidEvent(f"{name!r} must be a folder ending in '/', got {_shown(value)}")
    segments = value[:-1].split("/") if folder else value.split("/")
    if (
        size > _MAX_KEY_BYTES
        or any(segment in ("", ".", "..") for segment in segments)
        or _CONTROL.search(value)
        or _ESCAPED_PATH.search(value)
    ):
        raise InvalidEvent(
            f"{name!r} must be a relative S3 key without '//', '.' or '..' segments, control characters or "
            f"percent-escaped separators, at most {_MAX_KEY_BYTES} bytes: {_shown(value)}"
        )
    return value
