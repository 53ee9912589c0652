"""snaplake.aws: the error names the state machines retry on, and S3's 403 on the lake explained."""

from __future__ import annotations

from typing import Any

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError
from snaplake.core.aws import named_errors
from snaplake.core.errors import KmsAccessDenied, LakeAccessDenied, TransientAwsError
from snaplake.core.s3 import lake_access
from snaplake.rds.errors import ExportSlotsBusy

KEY = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000"


def client_error(code: str, status: int = 400, message: str = "no", operation: str = "PutObject") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def raising(error: BaseException) -> Any:
    @named_errors
    def handler(event: Any, context: Any) -> Any:
        raise error

    return handler


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException"),
        client_error("SlowDown", 503),
        client_error("ProvisionedThroughputExceededException"),
        client_error("SomethingNew", 500),
        EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com"),
    ],
)
def test_throttling_aws_failures_and_lost_connections_are_one_retryable_name(error: BaseException) -> None:
    with pytest.raises(TransientAwsError):
        raising(error)({}, None)


def test_a_client_error_hidden_by_the_transfer_manager_is_raised_as_itself() -> None:
    denied = client_error("AccessDenied", 403)
    try:
        raise denied
    except ClientError:
        try:
            raise S3UploadFailedError("Failed to upload /tmp/x to b/k: AccessDenied")
        except S3UploadFailedError as wrapped:
            upload_failed = wrapped
    with pytest.raises(ClientError) as caught:
        raising(upload_failed)({}, None)
    assert caught.value is denied


@pytest.mark.parametrize("error", [client_error("NoSuchKey", 404), ExportSlotsBusy("5 running"), ValueError("x")])
def test_other_errors_keep_their_names(error: BaseException) -> None:
    with pytest.raises(type(error)):
        raising(error)({}, None)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("AccessDenied", 403, "Access Denied"), LakeAccessDenied),
        (client_error("403", 403, "Forbidden", "HeadObject"), LakeAccessDenied),
        (client_error("AccessDenied", 403, "User is not authorized to perform: kms:GenerateDataKey"), KmsAccessDenied),
    ],
)
def test_a_403_on_the_lake_names_the_bucket_the_owner_and_the_key(error: ClientError, kind: type[Exception]) -> None:
    with pytest.raises(kind) as caught, lake_access("lake-bucket", "111122223333", KEY, "write"):
        raise error
    message = str(caught.value)
    assert "lake-bucket" in message and "111122223333" in message and KEY in message and "kms:GenerateDataKey" in message


def test_lake_access_lets_other_errors_through() -> None:
    with pytest.raises(ClientError), lake_access("lake-bucket", None, None, "read"):
        raise client_error("NoSuchKey", 404)
