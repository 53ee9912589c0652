"""Fault injection for the integration tests: AWS errors, Lambda timeouts, racing deliveries.

AWS errors are injected at botocore's `before-send` event, so the handlers' real
clients parse the error and botocore's own retry handler decides what to retry,
exactly as against AWS. botocore emits `before-send` to every registered handler
and uses the first answer, so a separate handler in front of moto's would still
let moto perform the request; the injector therefore wraps moto's `before-send`
handler (the one instance every client has registered, including the clients
the handlers created at deploy time) and answers in its place when a rule fires.

While installed, botocore's back-off sleeps and the adaptive mode's client-side
pacing are skipped (recorded in `Backoff`); which errors are retried, how many
attempts are made and the retry quota stay botocore's. Step Functions' own
Wait and Retry already run on the emulator's virtual clock. moto's S3 gets one
request at a time (it is not safe for concurrent writes of one key, which real
S3 handles atomically; see FaultInjector).

The lake check (`LakeContents`, `lake_problems`) compares what a faulted run
left in the lake with what the fault-free run leaves.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from snaplake_local.stack import EmulatedStack

S3_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload"})
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"


@dataclass
class Backoff:
    """What botocore would have waited: back-off before retries and adaptive-mode pacing."""

    retries: int = 0
    seconds: float = 0.0
    paced: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.retries += 1
            self.seconds += seconds

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        with self._lock:
            self.paced += 1
        return True


class _TimeWithoutSleep:
    """botocore.endpoint's `time` module, with `sleep` recorded instead of slept."""

    def __init__(self, backoff: Backoff):
        self._backoff = backoff

    def sleep(self, seconds: float) -> None:
        self._backoff.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextmanager
def instant_botocore_retries(backoff: Backoff) -> Iterator[Backoff]:
    import botocore.endpoint
    from botocore.retries import bucket

    with (
        mock.patch.object(botocore.endpoint, "time", _TimeWithoutSleep(backoff)),
        mock.patch.object(bucket.TokenBucket, "acquire", lambda _bucket, *a, **k: backoff.acquire()),
    ):
        yield backoff


# --------------------------------------------------------------------------- calls and error responses


@dataclass(frozen=True)
class Call:
    """One attempt of one AWS API call, as botocore is about to send it."""

    service: str  # botocore service id, lower case: "s3", "rds", "dynamodb"
    operation: str  # "CopyObject"
    request: AWSPreparedRequest

    def header(self, name: str) -> str:
        value = self.request.headers.get(name, "")
        return value.decode() if isinstance(value, bytes) else str(value)

    def _s3_address(self) -> tuple[str, str]:
        """(bucket, key) of an S3 request, virtual-hosted or path style."""
        url = urlsplit(self.request.url)
        host, path = url.hostname or "", unquote(url.path).lstrip("/")
        if host.startswith(("s3.", "s3-")):
            bucket, _, key = path.partition("/")
            return bucket, key
        return host.split(".s3", 1)[0], path

    @property
    def bucket(self) -> str:
        """The S3 bucket addressed; "" for other services."""
        return self._s3_address()[0] if self.service == "s3" else ""

    @property
    def key(self) -> str:
        """The S3 object key addressed; "" for bucket operations and other services."""
        return self._s3_address()[1] if self.service == "s3" else ""

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.service == "s3" else self.request.url


class _Body:
    """A raw HTTP body as botocore reads it (`stream()` or `read()`)."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def _response(call: Call, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    return AWSResponse(call.request.url, status, headers, _Body(body))  # type: ignore[arg-type]


def s3_error(call: Call, status: int, code: str, message: str) -> AWSResponse:
    """S3's REST-XML error document."""
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>fault-injected</HostId></Error>"
    )
    return _response(call, status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode())


def query_error(call: Call, status: int, code: str, message: str) -> AWSResponse:
    """An error of a query-protocol service (RDS)."""
    request_id = str(uuid.uuid4())
    body = (
        '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _response(call, status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode())


def json_error(call: Call, status: int, code: str, message: str, namespace: str) -> AWSResponse:
    """An error of a JSON-protocol service (DynamoDB: com.amazonaws.dynamodb.v20120810, KMS: TrentService)."""
    body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
    return _response(call, status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}, body)


# --------------------------------------------------------------------------- the injector


Action = Callable[[Call], AWSResponse | None]


@dataclass
class Rule:
    """Answer the first `first_calls` calls of each operation that `matches`, and `rate`
    of the later ones, with `action` (at most `limit` times in all).

    Which calls fire is a pure function of the seed, the rule's name, the
    operation and the call's position among the rule's calls of that operation,
    so a run making the same calls injects the same faults into each operation
    whatever the thread interleaving.
    An action may return None (let the call through) or raise (the client's
    caller sees the exception, as when the process dies mid-call).
    """

    name: str
    matches: Callable[[Call], bool]
    action: Action
    rate: float = 1.0
    limit: int | None = None
    first_calls: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    fired: list[Call] = field(default_factory=list)


class FaultInjector:
    def __init__(self, seed: int = 7):
        self.seed = seed
        self.rules: list[Rule] = []
        self.backoff = Backoff()
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def fired(self, name: str | None = None) -> list[Call]:
        with self._lock:
            return [call for rule in self.rules if name in (None, rule.name) for call in rule.fired]

    def _chosen(self, rule: Rule, call: Call) -> bool:
        rule.seen[call.operation] += 1
        if rule.seen[call.operation] <= rule.first_calls:
            return True
        digest = hashlib.sha256(f"{self.seed}:{rule.name}:{call.operation}:{rule.seen[call.operation]}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rule.rate

    def intercept(self, event_name: str, request: AWSPreparedRequest) -> AWSResponse | None:
        _, service, operation = [*event_name.split(".", 2), "", ""][:3]
        call = Call(service.lower(), operation, request)
        with self._lock:
            chosen = None
            for rule in self.rules:
                if not rule.matches(call) or (rule.limit is not None and len(rule.fired) >= rule.limit):
                    continue
                if self._chosen(rule, call):
                    rule.fired.append(call)
                    chosen = rule
                    break
        return chosen.action(call) if chosen else None

    @contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        injector = self

        def before_send(stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
            if not stubber.enabled:
                return original(stubber, event_name, request, **kwargs)
            injected = injector.intercept(event_name, request)
            if injected is not None:
                return injected
            return original(stubber, event_name, request, **kwargs)

        with mock.patch.object(BotocoreStubber, "__call__", before_send), instant_botocore_retries(self.backoff):
            yield self


# --------------------------------------------------------------------------- ready-made faults


def is_s3_write(call: Call) -> bool:
    return call.service == "s3" and call.operation in S3_WRITES


def s3_slow_down(matches: Callable[[Call], bool] = is_s3_write, rate: float = 0.2, limit: int | None = None) -> Rule:
    """S3's 503 SlowDown, as a prefix receiving too many requests per second answers."""
    return Rule("s3-slowdown", matches, lambda call: s3_error(call, 503, "SlowDown", "Please reduce your request rate."), rate, limit)


def is_start_or_describe(call: Call) -> bool:
    return call.operation.startswith(("Start", "Describe")) or call.operation == "ExportTableToPointInTime"


def rds_throttling(rate: float = 0.5, first_calls: int = 1) -> Rule:
    return Rule(
        "rds-throttling",
        lambda call: call.service == "rds" and is_start_or_describe(call),
        lambda call: query_error(call, 400, "Throttling", "Rate exceeded"),
        rate=rate,
        first_calls=first_calls,
    )


def dynamodb_throttling(rate: float = 0.5, first_calls: int = 1) -> Rule:
    return Rule(
        "dynamodb-throttling",
        lambda call: call.service == "dynamodb" and is_start_or_describe(call),
        lambda call: json_error(
            call, 400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.", "com.amazonaws.dynamodb.v20120810"
        ),
        rate=rate,
        first_calls=first_calls,
    )


def kms_access_denied(key_arn: str, account: str, permission: str = "kms:GenerateDataKey", detailed: bool = True) -> Rule:
    """S3 refusing a write encrypted with `key_arn` because the caller may not use the key.

    S3 names the key and the action when an identity policy is missing
    (`detailed`); when the key policy or another account denies, it answers a
    bare "Access Denied".
    """
    message = (
        f"User: arn:aws:sts::{account}:assumed-role/snaplake-local-functions/lambda is not authorized to perform: "
        f"{permission} on resource: {key_arn} because no identity-based policy allows the {permission} action"
        if detailed
        else "Access Denied"
    )
    return Rule(
        "kms-access-denied",
        lambda call: is_s3_write(call) and call.header(KMS_KEY_HEADER) == key_arn,
        lambda call: s3_error(call, 403, "AccessDenied", message),
    )


class LambdaTimeout(Exception):
    """A function out of time: Step Functions sees the error `Sandbox.Timedout`."""


# The error type Lambda reports is the exception's class name (see snaplake_local.emulator.lambdas.LocalFunction.invoke).
LambdaTimeout.__name__ = LambdaTimeout.__qualname__ = "Sandbox.Timedout"


def timeout_message(stack: EmulatedStack, logical_id: str) -> str:
    return f"{stack.function(logical_id).name} Task timed out after {stack.function(logical_id).timeout_seconds}.00 seconds"


@dataclass
class TimeoutOnce:
    """The function's first invocation that asks for its remaining time `checks` times runs out of time there."""

    checks: int
    message: str
    asked: int = 0
    fired: bool = False

    def __call__(self) -> int:
        self.asked += 1
        if not self.fired and self.asked >= self.checks:
            self.fired = True
            raise LambdaTimeout(self.message)
        return 900_000


def time_out_once(stack: EmulatedStack, logical_id: str, checks: int) -> TimeoutOnce:
    """Kill one invocation of the function mid-work, through context.get_remaining_time_in_millis()."""
    hook = TimeoutOnce(checks, timeout_message(stack, logical_id))
    stack.lambdas.remaining_ms[stack.function(logical_id).name] = hook
    return hook


def die_at(name: str, matches: Callable[[Call], bool], error: Exception, limit: int = 1) -> Rule:
    """The process dies when it is about to make the matching call (the call is not made)."""

    def die(call: Call) -> AWSResponse | None:
        raise error

    return Rule(name, matches, die, limit=limit)


class Gate:
    """Holds matching calls until `parties` of them wait, then lets them all through at once.

    Makes a race certain: e.g. three executions all past their "does it exist?"
    check before any of them starts the export. If the callers never all arrive
    (the code serialised them), the gate opens after `timeout_seconds` and
    records that it broke.
    """

    def __init__(self, name: str, matches: Callable[[Call], bool], parties: int, timeout_seconds: float = 10):
        self.barrier = threading.Barrier(parties, timeout=timeout_seconds)
        self.broken = False
        self.rule = Rule(name, matches, self._wait)

    def _wait(self, call: Call) -> AWSResponse | None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.broken = True
        return None


# --------------------------------------------------------------------------- clock


def set_clock(stack: EmulatedStack, at: datetime) -> None:
    """Move the stack's virtual clock forward to `at`, so two stacks stamp the same times."""
    ahead = (at - stack.clock.now()).total_seconds()
    if ahead < 0:
        raise ValueError(f"the virtual clock is already past {at.isoformat()}")
    stack.clock.advance(ahead)


# --------------------------------------------------------------------------- the lake check

_PARTITION = re.compile(r"^[A-Za-z0-9_]+=")


def dataset(key: str) -> str:
    """A data key's table: its folders before the first `name=value` partition folder."""
    parts = key.split("/")
    for index, part in enumerate(parts):
        if _PARTITION.match(part):
            return "/".join(parts[:index])
    return key.rsplit("/", 1)[0]


# Claims and column registries (snaplake.core.claims): first-writer records, not data Athena reads.
# Iceberg names its data and metadata files with random ids (as Athena writes them) and keeps old snapshots' files,
# so `<table>_current` is compared by its items (tests/integration/test_dynamodb_current.py), not by its keys here.
BOOKKEEPING = ("_snaplake/claims/", "_snaplake/columns/", "_snaplake/current/", "dynamodb_current/")


@dataclass(frozen=True)
class LakeContents:
    """What a run left in the lake bucket: every key listed but the bookkeeping records, and each Parquet file's rows."""

    keys: tuple[str, ...]
    rows: Mapping[str, tuple[str, ...]]  # data key -> its rows as canonical JSON

    @classmethod
    def read(cls, stack: EmulatedStack) -> LakeContents:
        import pyarrow as pa
        import pyarrow.parquet as pq

        s3 = stack.client("s3")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.lake_bucket):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        keys = [key for key in keys if not any(part in key for part in BOOKKEEPING)]
        rows = {}
        for key in keys:
            if key.endswith(".parquet"):
                body = s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
                table = pq.read_table(pa.BufferReader(body))
                rows[key] = tuple(json.dumps(row, sort_keys=True, default=str) for row in table.to_pylist())
        return cls(tuple(keys), rows)

    def under(self, prefix: str) -> LakeContents:
        """Only the keys (and rows) under `prefix`."""
        keys = tuple(key for key in self.keys if key.startswith(prefix))
        return LakeContents(keys, {key: rows for key, rows in self.rows.items() if key.startswith(prefix)})

    def export_time_masked(self) -> LakeContents:
        """The same contents with every `export_time=<instant>` folder named `export_time=*` (for runs whose
        full export legitimately started at another instant)."""

        def mask(key: str) -> str:
            return re.sub(r"export_time=[^/]+", "export_time=*", key)

        return LakeContents(tuple(mask(key) for key in self.keys), {mask(key): rows for key, rows in self.rows.items()})

    def table_rows(self) -> dict[str, Counter[str]]:
        tables: dict[str, Counter[str]] = {}
        for key, rows in self.rows.items():
            tables.setdefault(dataset(key), Counter()).update(rows)
        return tables


def _short(row: str) -> str:
    return row if len(row) <= 120 else row[:117] + "..."


def lake_problems(actual: LakeContents, expected: LakeContents, prefix: str) -> list[str]:
    """Everything wrong with `actual` against the fault-free `expected`: keys outside the
    lake prefix, keys listed twice, missing or extra objects, lost or duplicated rows."""
    problems: list[str] = []
    root = f"{prefix.strip('/')}/" if prefix else ""
    problems += [f"{key}: outside the lake prefix {root!r}" for key in actual.keys if not key.startswith(root)]
    problems += [f"{key}: listed {count} times" for key, count in Counter(actual.keys).items() if count > 1]
    problems += [f"{key}: missing (the fault-free run writes it)" for key in sorted(set(expected.keys) - set(actual.keys))]
    problems += [f"{key}: extra (the fault-free run does not write it)" for key in sorted(set(actual.keys) - set(expected.keys))]
    found, wanted = actual.table_rows(), expected.table_rows()
    for table in sorted(set(found) | set(wanted)):
        have, want = found.get(table, Counter()), wanted.get(table, Counter())
        for row, count in sorted(have.items()):
            if count > want[row]:
                holders = sorted(key for key, rows in actual.rows.items() if row in rows)
                in_keys = ", ".join(holders)
                problems.append(f"{table}: row {_short(row)} appears {count} times (in {in_keys}), the fault-free run has {want[row]}")
        for row, count in sorted(want.items()):
            if have[row] < count:
                problems.append(f"{table}: row {_short(row)} lost ({have[row]} of {count})")
    return problems
