"""The one S3 adapter: a bucket as the pipelines use it, with every request's safety arguments in one place.

Every request to a `Bucket` carries `ExpectedBucketOwner` (when the owner is
known), so a bucket of another account with the same name is never read or
written. Every write carries the bucket's KMS key and ACL; a copy into the
bucket also checks the source's owner. For the lake (`lake=True`) a refused
request becomes `LakeAccessDenied` (or `KmsAccessDenied`) naming what to
check, instead of S3's bare 403. "Not there" is recognised by
`snaplake.core.aws.is_not_found` only.

The boto3 calls live here; tests/template charges each to the code that calls
the adapter, with the data it touches (see snaplake.permissions).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import IO, Any

from snaplake.core.aws import client_error_of, error_code, error_message, is_access_denied, is_not_found
from snaplake.core.errors import KmsAccessDenied, LakeAccessDenied, PlanMissing
from snaplake.core.limits import S3_DELETE_OBJECTS_MAX_KEYS, S3_MULTIPART_MAX_PARTS

MIN_PART_BYTES = 512 * 1024**2  # part size of multipart copies (fewer, larger parts copy faster)
MULTIPART_COPY_THREADS = 8
CONTENT_TYPE = "application/octet-stream"


@contextmanager
def lake_access(bucket: str, owner: str | None, kms_key_arn: str | None, action: str, source_bucket: str | None = None) -> Iterator[None]:
    """S3's 403 on a lake request -> LakeAccessDenied (KmsAccessDenied when S3 says the key refused) naming what to check.

    S3 answers the same bare "Access Denied" for a bucket of another owner (ExpectedBucketOwner), a bucket
    policy that does not allow the request, and a key this role may not use, so the message names all three.
    """
    try:
        yield
    except Exception as error:
        cause = client_error_of(error)
        if cause is None or not is_access_denied(cause):
            raise
        said = error_message(cause)
        permission = "kms:GenerateDataKey" if action == "write" else "kms:Decrypt"
        checks = [f"the bucket is owned by account {owner or '(this account)'} (LakeBucketOwner, sent as ExpectedBucketOwner)"]
        checks.append(f"the bucket policy lets this role {action} there")
        if kms_key_arn:
            checks.append(f"the lake key {kms_key_arn} lets this role use {permission} (its key policy and this role's policy)")
        if source_bucket:
            checks.append(f"this role may read the copy's source in bucket {source_bucket}")
        refused = f"S3 refused {cause.operation_name} in lake bucket {bucket} ({error_code(cause)}: {said})"
        message = f"{refused}; check that " + "; ".join(checks)
        kind = KmsAccessDenied if "kms" in said.lower() else LakeAccessDenied
        raise kind(message) from error


@dataclass(frozen=True)
class Bucket:
    """One bucket: the lake, or the export bucket RDS and DynamoDB write their exports (and snaplake its plans) to."""

    s3: Any
    name: str
    owner: str | None = None  # sent as ExpectedBucketOwner
    kms_key_arn: str | None = None  # objects written here are encrypted with it
    acl: str | None = None  # canned ACL of objects written here
    lake: bool = False  # refused requests are named (LakeAccessDenied) with what to check

    # ---------------------------------------------------------------- arguments
    def _owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.owner} if self.owner else {}

    def _encryption(self) -> dict[str, Any]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_arn} if self.kms_key_arn else {}

    def write_args(self) -> dict[str, Any]:
        """What every object written here carries: the owner check, the KMS key (with an S3 Bucket Key) and the ACL."""
        args: dict[str, Any] = {"Bucket": self.name, **self._owner(), **self._encryption()}
        if self.kms_key_arn:
            args["BucketKeyEnabled"] = True
        if self.acl:
            args["ACL"] = self.acl
        return args

    def _refused(self, action: str, source: Bucket | None = None) -> AbstractContextManager[None]:
        if not self.lake:
            return nullcontext()
        key = self.kms_key_arn if action in ("read", "write") else None
        return lake_access(self.name, self.owner, key, action, source.name if source else None)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    # ---------------------------------------------------------------- reading
    def objects_under(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under `prefix` (ListObjectsV2, all pages)."""
        with self._refused("list"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix, **self._owner()):
                yield from page.get("Contents", [])

    def first_objects_under(self, prefix: str, max_keys: int = 1000) -> list[dict[str, Any]]:
        """The first objects under `prefix`, from one ListObjectsV2 request."""
        with self._refused("list"):
            return list(self.s3.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=max_keys, **self._owner()).get("Contents", []))

    def read_bytes(self, key: str) -> bytes:
        with self._refused("read"):
            return bytes(self.s3.get_object(Bucket=self.name, Key=key, **self._owner())["Body"].read())

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def read_json_with_etag(self, key: str) -> tuple[Any, str] | None:
        """A JSON object and its ETag (for a conditional rewrite), or None when it is not there."""
        with self._refused("read"):
            try:
                response = self.s3.get_object(Bucket=self.name, Key=key, **self._owner())
            except Exception as error:
                if is_not_found(error):
                    return None
                raise
        return json.loads(response["Body"].read()), str(response["ETag"])

    def read_json_or_none(self, key: str) -> Any:
        found = self.read_json_with_etag(key)
        return None if found is None else found[0]

    def read_plan(self, key: str) -> Any:
        """A JSON file of a step's plan; PlanMissing when it is not there."""
        try:
            return self.read_json(key)
        except Exception as error:
            if not is_not_found(error):
                raise
            raise PlanMissing(f"{self.uri(key)} does not exist: the plan was deleted, or the step that writes it did not run") from None

    def read_tail(self, key: str, size: int) -> tuple[bytes, int]:
        """The last `size` bytes of an object (all of it when smaller) and the object's length."""
        with self._refused("read"):
            response = self.s3.get_object(Bucket=self.name, Key=key, Range=f"bytes=-{size}", **self._owner())
        body = bytes(response["Body"].read())
        content_range = response.get("ContentRange")  # "bytes 100-707/708"; absent when the whole object came back
        return body, int(content_range.rsplit("/", 1)[1]) if content_range else len(body)

    def open_stream(self, key: str) -> Any:
        """The object's body as a stream (for reading large objects piece by piece)."""
        with self._refused("read"):
            return self.s3.get_object(Bucket=self.name, Key=key, **self._owner())["Body"]

    def metadata(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when it is not there."""
        with self._refused("read"):
            try:
                return dict(self.s3.head_object(Bucket=self.name, Key=key, **self._owner()))
            except Exception as error:
                if is_not_found(error):
                    return None
                raise

    # ---------------------------------------------------------------- writing
    def write_bytes(
        self,
        key: str,
        body: bytes | IO[bytes],
        content_type: str | None = None,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> None:
        """PutObject (body: bytes, or a file read from its position); `if_none_match` writes only when the key is
        absent, `if_match` only over that ETag (S3 answers 412 otherwise)."""
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        with self._refused("write"):
            self.s3.put_object(Key=key, Body=body, **extra, **self.write_args())

    def write_file(self, path: str, key: str, metadata: dict[str, str] | None = None) -> None:
        """Upload a local file (multipart when large), with `metadata` (x-amz-meta-*) if given."""
        args = {**self.write_args(), **({"Metadata": metadata, "ContentType": CONTENT_TYPE} if metadata else {})}
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)  # not an upload_file argument; the bucket's default applies
        with self._refused("write"):
            self.s3.upload_file(path, bucket, key, ExtraArgs=args)

    def copy_within(self, source_key: str, key: str) -> None:
        """Copy an object of this bucket to another key of it (multipart when large)."""
        args = self.write_args()
        bucket = args.pop("Bucket")
        args.pop("BucketKeyEnabled", None)
        with self._refused("write"):
            self.s3.copy({"Bucket": bucket, "Key": source_key}, bucket, key, ExtraArgs=args)

    def copy_in(
        self, source: Bucket, source_key: str, key: str, *, size: int, etag: str, metadata: dict[str, str], multipart_above: int
    ) -> None:
        """Server-side copy of `source_key` (exactly the version with `etag`) from `source` to `key` here:
        CopyObject up to `multipart_above` bytes, parallel UploadPartCopy above."""
        copy_source = {"Bucket": source.name, "Key": source_key}
        source_owner = {"ExpectedSourceBucketOwner": source.owner} if source.owner else {}
        with self._refused("write", source):
            if size <= multipart_above:
                self.s3.copy_object(
                    CopySource=copy_source,
                    CopySourceIfMatch=etag,
                    Key=key,
                    MetadataDirective="REPLACE",
                    Metadata=metadata,
                    ContentType=CONTENT_TYPE,
                    **source_owner,
                    **self.write_args(),
                )
                return
            part_size = max(min(MIN_PART_BYTES, multipart_above), -(-size // S3_MULTIPART_MAX_PARTS))
            upload_id = self.s3.create_multipart_upload(Key=key, Metadata=metadata, ContentType=CONTENT_TYPE, **self.write_args())[
                "UploadId"
            ]

            def copy_part(number: int) -> dict[str, Any]:
                first = (number - 1) * part_size
                last = min(first + part_size, size) - 1
                result = self.s3.upload_part_copy(
                    Bucket=self.name,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceIfMatch=etag,
                    CopySourceRange=f"bytes={first}-{last}",
                    **self._owner(),
                    **source_owner,
                )
                return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

            part_count = -(-size // part_size)
            try:
                with ThreadPoolExecutor(max_workers=min(MULTIPART_COPY_THREADS, part_count)) as pool:
                    parts = list(pool.map(copy_part, range(1, part_count + 1)))
                self.s3.complete_multipart_upload(
                    Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **self._owner()
                )
            except BaseException:
                self.s3.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id, **self._owner())
                raise

    def delete_keys(self, keys: list[str]) -> list[dict[str, Any]]:
        """DeleteObjects in calls of at most 1,000 keys; returns the per-key errors S3 reported (deleting a missing key is none)."""
        errors: list[dict[str, Any]] = []
        for start in range(0, len(keys), S3_DELETE_OBJECTS_MAX_KEYS):
            chunk = [{"Key": key} for key in keys[start : start + S3_DELETE_OBJECTS_MAX_KEYS]]
            with self._refused("delete"):
                answer = self.s3.delete_objects(Bucket=self.name, Delete={"Objects": chunk, "Quiet": True}, **self._owner())
            errors.extend(answer.get("Errors", []))
        return errors
