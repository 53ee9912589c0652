"""What every pipeline stands on: AWS clients and what their error codes mean (`aws`), the one S3 adapter (`s3`),
configuration (`settings`), the errors every pipeline shares (`errors`), AWS limits (`limits`), names and times of
the lake (`names`, `times`), the checks of a step's input (`handler_input`) and the PII column rules every pipeline
applies at landing (`pii`)."""

from snaplake.core.aws import client, error_code, is_access_denied, is_not_found, is_transient, named_errors
from snaplake.core.errors import (
    ConfigError,
    ExportFailed,
    ExportNotFound,
    InvalidEvent,
    InvalidPiiRules,
    KmsAccessDenied,
    LakeAccessDenied,
    PiiKeyUnavailable,
    PlanMissing,
    SnaplakeError,
    TransientAwsError,
)
from snaplake.core.s3 import Bucket, lake_access
from snaplake.core.settings import LakeSettings, Setting

__all__ = [
    "Bucket",
    "ConfigError",
    "ExportFailed",
    "ExportNotFound",
    "InvalidEvent",
    "InvalidPiiRules",
    "KmsAccessDenied",
    "LakeAccessDenied",
    "LakeSettings",
    "PiiKeyUnavailable",
    "PlanMissing",
    "Setting",
    "SnaplakeError",
    "TransientAwsError",
    "client",
    "error_code",
    "is_access_denied",
    "is_not_found",
    "is_transient",
    "lake_access",
    "named_errors",
]
