"""What every step handler checks first: the event is a JSON object."""

from typing import Any

from snaplake.errors import InvalidEvent


def event_object(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
    return event
