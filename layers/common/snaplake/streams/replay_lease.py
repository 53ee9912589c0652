"""The replay lease: at most one replay of a shard's failures writes at a time.

A replay (snaplake.streams.replay) is a second writer of the change log, next to the event source mapping. It never
shares records with the mapping (it writes only a range the mapping has given up on), but two replays of the same
failure would: each could find a record missing and both write it. So a replay first takes the shard's lease, a
small JSON object in the lake written with S3 conditional writes (core.claims' way: `If-None-Match` for the first,
`If-Match` on the ETag read to take over):

    <prefix>/_snaplake/claims/dynamodb_stream_changes/<table>/replays/<stream>/<shard id>.json

It lives with the table's folder claim, in the folder the stream function may already read and write.

- A lease is `running` until its holder's invocation deadline plus LEASE_MARGIN_SECONDS (`expiresAt`, epoch
  seconds). The holder writes nothing after its deadline (Lambda stops it at its timeout, and `FencedStore` refuses
  a write after it), so once the lease has expired nothing of its holder can land any more; the margin covers
  clock skew between invocations and a put still in flight.
- A finished or failed replay marks its lease `finished` / `failed`: the next replay takes it over at once (landed
  records are skipped, so re-running a finished replay writes nothing).
- A replay that finds a `running` lease that has not expired is refused (ReplayInProgress); one that crashed is
  replaced once its lease has expired.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from snaplake.core.aws import is_not_found
from snaplake.core.claims import MAX_ATTEMPTS, claim_key, is_conflict
from snaplake.core.names import athena_name, join_key
from snaplake.core.s3 import Bucket
from snaplake.streams.errors import ReplayInProgress, ReplayLeaseExpired
from snaplake.streams.landed import ChangeLogStore, stream_id
from snaplake.streams.records import stream_arn_parts
from snaplake.streams.settings import CHANGE_LOG_FOLDER

LEASE_FORMAT = "snaplake.stream-replay-lease/1"
# How long after its holder's deadline a lease is still honoured: clock skew between invocations, a put in flight.
LEASE_MARGIN_SECONDS = 60.0
RUNNING, FINISHED, FAILED = "running", "finished", "failed"


class ReplayLeases(Protocol):
    """Conditional writes of small JSON documents in the lake (what the lease needs)."""

    def read_lease(self, key: str) -> tuple[dict[str, Any], str] | None:
        """The document at `key` and its ETag, or None when there is none."""
        ...

    def write_lease(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool:
        """Write `document` only over the version `etag` (None: only when `key` is absent); False when another
        writer came first."""
        ...


class LakeReplayLeases:
    """ReplayLeases in the lake bucket (S3 `If-None-Match` / `If-Match`)."""

    lake: Bucket

    def __init__(self, lake: Bucket) -> None:
        self.lake = lake

    def read_lease(self, key: str) -> tuple[dict[str, Any], str] | None:
        found = self.lake.read_json_with_etag(key)
        if found is None:
            return None
        document, etag = found
        return (dict(document) if isinstance(document, dict) else {}), etag

    def write_lease(self, key: str, document: Mapping[str, Any], etag: str | None) -> bool:
        body = json.dumps(dict(document), sort_keys=True).encode()
        try:
            if etag is None:
                self.lake.write_bytes(key, body, "application/json", if_none_match=True)
            else:
                self.lake.write_bytes(key, body, "application/json", if_match=etag)
        except Exception as error:
            # 412/409: another writer came first; 404 on If-Match: the lease was removed in between.
            if is_conflict(error) or (etag is not None and is_not_found(error)):
                return False
            raise
        return True


def lease_key(prefix: str, stream_arn: str, shard_id: str) -> str:
    """Where the replay lease of one shard of a stream is (under the table's change-log claims)."""
    parts = stream_arn_parts(stream_arn)
    if parts is None:
        raise ValueError(f"{stream_arn!r} is not a DynamoDB stream ARN")
    return join_key(prefix, claim_key(CHANGE_LOG_FOLDER, athena_name(parts[1]), "replays", stream_id(stream_arn), shard_id))


@dataclass(frozen=True)
class ReplayLease:
    key: str
    holder: str
    deadline: float  # epoch seconds: the holder writes nothing after this (its invocation's end)
    expires: float  # epoch seconds: deadline + LEASE_MARGIN_SECONDS; another replay may take over after this


def _expires_at(recorded: Mapping[str, Any]) -> float:
    value = recorded.get("expiresAt")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return math.inf  # not a lease this code wrote: held until someone looks (the message names the key)
    return float(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def take_lease(leases: ReplayLeases, key: str, holder: str, now: float, deadline: float, about: Mapping[str, Any]) -> ReplayLease:
    """Take the lease at `key` for `holder` until `deadline` (+ margin); ReplayInProgress while another holds it."""
    lease = ReplayLease(key, holder, deadline, deadline + LEASE_MARGIN_SECONDS)
    document = {
        "format": LEASE_FORMAT,
        "state": RUNNING,
        "holder": holder,
        "takenAt": now,
        "deadline": deadline,
        "expiresAt": lease.expires,
        "expires": _iso(lease.expires),
        **about,
    }
    for _ in range(MAX_ATTEMPTS):
        current = leases.read_lease(key)
        if current is not None:
            recorded = current[0]
            if recorded.get("state") not in (FINISHED, FAILED) and _expires_at(recorded) > now:
                until = recorded.get("expires", "a time it does not say")
                raise ReplayInProgress(
                    f"replay {recorded.get('holder')!r} holds {key} until {until}: run this replay after it ends "
                    "(once it has finished, a new replay writes only what is still missing)"
                )
        if leases.write_lease(key, document, None if current is None else current[1]):
            return lease
    raise ReplayInProgress(f"{key} kept changing under {MAX_ATTEMPTS} attempts: other replays are taking it")


def end_lease(leases: ReplayLeases, lease: ReplayLease, now: float, state: str, summary: Mapping[str, Any]) -> bool:
    """Mark the lease `finished` or `failed` if `holder` still holds it; False when it no longer does."""
    current = leases.read_lease(lease.key)
    if current is None:
        return False
    recorded, etag = current
    if recorded.get("holder") != lease.holder or recorded.get("state") != RUNNING:
        return False
    return leases.write_lease(lease.key, {**recorded, "state": state, "endedAt": now, "outcome": dict(summary)}, etag)


class FencedStore:
    """The change-log store as a replay writes it: every write is refused (ReplayLeaseExpired) once the clock has
    reached the lease's deadline, after which the lease may be another replay's. Everything else is passed on."""

    store: ChangeLogStore
    lease: ReplayLease
    clock: Callable[[], float]

    def __init__(self, store: ChangeLogStore, lease: ReplayLease, clock: Callable[[], float]) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock

    def write(self, key: str, body: bytes) -> None:
        if self.clock() >= self.lease.deadline:
            raise ReplayLeaseExpired(f"the replay reached its deadline ({_iso(self.lease.deadline)}); {key} was not written")
        self.store.write(key, body)

    def keys_from(self, prefix: str) -> Iterator[str]:
        return self.store.keys_from(prefix)

    def read(self, key: str) -> bytes:
        return self.store.read(key)

    def claim(self, key: str, owner: Mapping[str, Any]) -> dict[str, Any]:
        return self.store.claim(key, owner)

    def registered_columns(self, registry: tuple[str, ...], paths: Iterable[tuple[str, ...]], separator: str) -> dict[tuple[str, ...], str]:
        return self.store.registered_columns(registry, paths, separator)

    def view_type(self, stream_arn: str) -> str:
        return self.store.view_type(stream_arn)
