"""Errors of the DynamoDB Streams change log."""

from snaplake.core.errors import SnaplakeError


class MalformedStreamRecord(SnaplakeError):
    """A stream record (or the event holding them) is not what this pipeline can convert; the message says why."""
