"""The one place boto3 clients are made, and AWS errors are given the names the state machines use.

Handlers create their clients once at module level (reused across warm
invocations) and pass them into library functions. `AWS_ENDPOINT_URL` is
honoured by botocore itself, so the same code talks to AWS or to an emulator.

All clients come from one boto3 Session per process, so botocore parses its
endpoint and service-model files once rather than once per client (that
parsing is most of a client's creation time, and of a cold start's). Clients
are made at import time, on one thread, as a Session requires.

Error names: Step Functions matches Retry/Catch on the exception's class name,
and botocore names a ClientError after each service's own codes
(`ThrottlingException`, `ProvisionedThroughputExceededException`, ...), while
boto3's transfer manager hides it inside `S3UploadFailedError`. `named_errors`
gives every handler one retryable name for throttling and AWS-side failures,
`TransientAwsError`. What an error code means ("try again", "not there",
"refused") is decided here and nowhere else: `is_transient`, `is_not_found`,
`is_access_denied`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnection

from snaplake.core.errors import SnaplakeError, TransientAwsError

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=64)
_SESSION: boto3.session.Session | None = None

# Error codes that mean "try again later" in the services snaplake calls (HTTP 5xx answers count too).
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# S3 answers a HEAD with no body, so its 403 and 404 arrive as the codes "403" and "404".
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "KMS.AccessDeniedException", "403"})
# An object, bucket, export, table... that is not there. Glue, DynamoDB and RDS name theirs; S3 says NoSuchKey, or 404 to a HEAD.
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})

Handler = TypeVar("Handler", bound=Callable[..., Any])


def client(service: str) -> Any:
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION.client(service, config=_CONFIG)  # type: ignore[call-overload]


def assumed_role_client(service: str, role_arn: str, session_name: str, tags: dict[str, str]) -> Any:
    """A client acting as `role_arn` (assumed with these session tags). The credentials are fetched on first use and
    again before they expire, so a client made at module level stays valid in a warm container."""
    sts = client("sts")

    def assume() -> dict[str, str]:
        answer = sts.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
        )
        credentials = answer["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    class AssumedRole(CredentialProvider):
        METHOD = "sts-assume-role"

        def load(self) -> DeferredRefreshableCredentials:
            return DeferredRefreshableCredentials(refresh_using=assume, method=self.METHOD)

    role_session = botocore.session.get_session()
    role_session.register_component("credential_provider", CredentialResolver([AssumedRole()]))
    return boto3.session.Session(botocore_session=role_session).client(service, config=_CONFIG)  # type: ignore[call-overload]


def client_error_of(error: BaseException | None) -> ClientError | None:
    """The ClientError an SDK error stands for (itself, or the one boto3's transfer manager wrapped)."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, ClientError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def is_not_found(error: BaseException, *codes: str) -> bool:
    """Whether an SDK error says the thing asked for is not there: S3's object/bucket, or one of `codes`
    (the service's own name for it, e.g. "EntityNotFoundException")."""
    cause = client_error_of(error)
    return cause is not None and (error_code(cause) in NOT_FOUND_CODES or error_code(cause) in codes)


def is_access_denied(error: ClientError) -> bool:
    return error_code(error) in ACCESS_DENIED_CODES


def is_transient(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error_code(error) in TRANSIENT_ERROR_CODES or int(status) >= 500


def named_errors(handler: Handler) -> Handler:
    """Handler decorator: throttling, AWS-side failures and lost connections that outlast the SDK's retries become
    TransientAwsError; a ClientError wrapped by boto3's transfer manager is raised as itself (so Retry on
    ClientError matches it)."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except SnaplakeError:
            raise
        except (NoConnection, HTTPClientError) as error:
            # No answer at all (endpoint unreachable, read timeout) after the SDK's retries: as transient as a 503.
            raise TransientAwsError(f"no answer from AWS: {error}") from error
        except Exception as error:
            cause = client_error_of(error)
            if cause is None:
                raise
            if is_transient(cause):
                raise TransientAwsError(
                    f"{cause.operation_name}: {error_code(cause)}: {error_message(cause)} (the SDK's retries ran out)"
                ) from error
            if cause is not error:
                raise cause from error
            raise

    return run  # type: ignore[return-value]
