"""S3 as AWS serves it: ExpectedBucketOwner is checked (moto ignores it) and each request is applied
atomically, by serving one request at a time; the emulators' own writes take the same turn (emulated_s3).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from snaplake_local.emulator.clock import patched_attribute

# S3 applies each request atomically; moto does not: overwriting a key closes the old
# object's buffer even while a concurrent request (another in-process Lambda thread) is
# still reading it. The emulated S3 therefore serves one request at a time, and the
# emulators (RDS and DynamoDB exports, Athena) write through the same lock, with emulated_s3.
_S3_ONE_REQUEST_AT_A_TIME = threading.RLock()


@contextmanager
def emulated_s3(account: str) -> Iterator[Any]:
    """moto's S3 backend, held for one atomic step of an emulator."""
    from moto.s3.models import s3_backends

    with _S3_ONE_REQUEST_AT_A_TIME:
        yield s3_backends[account]["aws"]


@contextmanager
def enforce_expected_bucket_owner() -> Iterator[None]:
    """S3 refuses a request whose ExpectedBucketOwner (or ExpectedSourceBucketOwner)
    is not the bucket's account with 403 AccessDenied; moto ignores both headers.
    Every emulated bucket belongs to the emulator's one account.

    Requests are also handled one at a time (_S3_ONE_REQUEST_AT_A_TIME)."""
    from moto.s3 import responses
    from moto.s3.exceptions import S3AccessDeniedError

    def checked(original: Callable[..., Any]) -> Callable[..., Any]:
        def check_owner(self: Any, request: Any, full_url: str) -> Any:
            for header in ("x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"):
                expected = request.headers.get(header)
                if expected and expected != self.current_account:
                    raise S3AccessDeniedError()
            with _S3_ONE_REQUEST_AT_A_TIME:
                return original(self, request, full_url)

        return check_owner

    with (
        patched_attribute(responses.S3Response, "_bucket_response", checked(responses.S3Response._bucket_response)),
        patched_attribute(responses.S3Response, "_key_response", checked(responses.S3Response._key_response)),
    ):
        yield
