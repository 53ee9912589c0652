"""Errors named for what happened, shared by every pipeline; each subpackage adds its own in its errors.py.

Lambda reports an uncaught exception's class name as the error type, and Step
Functions matches `Retry`/`Catch` on that name, so these class names are part of
the state machines' contract: statemachine/*.asl.json refers to them. They must
stay unique across subpackages (tests/template checks the ASL names exist).
"""


class SnaplakeError(Exception):
    """Base class: every error the pipeline raises on purpose."""


class ConfigError(SnaplakeError):
    """An environment variable is missing or invalid."""


class InvalidPiiRules(ConfigError):
    """The PII column rules (PII_RULES, the PiiRules parameter) are not a valid rules document; nothing lands until fixed."""


class PiiKeyUnavailable(SnaplakeError):
    """The PII hashing key could not be decrypted with KMS (no ciphertext configured, the key refused it, or this role
    may not use it); nothing with a hashed column lands."""


class InvalidEvent(SnaplakeError):
    """The input event is malformed or of an unsupported kind."""


class TransientAwsError(SnaplakeError):
    """AWS throttled a request or failed internally, and the SDK's own retries ran out (the state machines retry it)."""


class LakeAccessDenied(SnaplakeError):
    """S3 refused a request on the lake bucket: its owner, its bucket policy or the lake key's policy; the message says which to check."""


class KmsAccessDenied(LakeAccessDenied):
    """S3 refused a lake request because this role may not use the lake's KMS key; the message names the key and the permission."""


class PlanMissing(SnaplakeError):
    """The plan folder named by the event holds no plan, or not the file asked for (a wrong prefix, or the plan was deleted)."""


class ExportNotFound(SnaplakeError):
    """DescribeExportTasks does not know the export task."""


class ExportFailed(SnaplakeError):
    """The export task ended FAILED; the message is the service's FailureCause."""
