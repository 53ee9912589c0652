"""Glue as AWS serves it: UpdateTable with a VersionId updates only that version of the table, and a CatalogId
names whose catalog a call is for.

AWS Glue's UpdateTable takes an optional `VersionId` (optimistic locking): when the table's current
version is another one, the update fails with ConcurrentModificationException and changes nothing.
moto accepts any VersionId and overwrites the table, so two writers that read, merge and write the same
table would silently lose one's columns. Each table update is also applied atomically here (one at a time).

A Glue call's `CatalogId` names the account whose Data Catalog it reads or changes; without a Glue resource policy
in that account granting the caller, a call naming another account's catalog is refused (AccessDeniedException).
moto ignores `CatalogId` and serves the caller's own catalog, so a source account's stack that named the lake's
catalog but kept its own credentials would silently fill its own catalog. snaplake's lake stacks have no Glue
resource policy (ADR 0016): the emulated rule is that a call may name only the caller's own account's catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from snaplake_local.emulator.clock import patched_attribute

_ONE_UPDATE_AT_A_TIME = threading.RLock()


@contextmanager
def enforce_catalog_ids() -> Iterator[None]:
    """A Glue call whose CatalogId is not the calling account fails with AccessDeniedException, as on AWS when the
    catalog's account has no resource policy for the caller."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue import responses

    original: Callable[..., Any] = responses.GlueResponse.call_action

    def call_action(self: Any) -> Any:
        named = self._get_param("CatalogId")
        if named is not None and str(named) != self.current_account:
            raise JsonRESTError(
                "AccessDeniedException",
                f"account {self.current_account} is not authorized to access the Glue catalog of account {named}",
            )
        return original(self)

    with patched_attribute(responses.GlueResponse, "call_action", call_action):
        yield


@contextmanager
def enforce_table_version_ids() -> Iterator[None]:
    """UpdateTable with a stale VersionId fails with ConcurrentModificationException, as on AWS."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue import responses

    original: Callable[..., Any] = responses.GlueResponse.update_table

    def update_table(self: Any) -> Any:
        with _ONE_UPDATE_AT_A_TIME:
            # _get_param reads the JSON body in every moto 5.x (5.2.6 dropped the `parameters` attribute).
            expected = self._get_param("VersionId")
            if expected is not None:
                name = (self._get_param("TableInput") or {}).get("Name")
                table = self.glue_backend.get_table(self._get_param("DatabaseName"), name)
                if str(table._current_version) != str(expected):
                    raise JsonRESTError(
                        "ConcurrentModificationException",
                        f"Table {name} was updated to version {table._current_version}; the update names version {expected}",
                    )
            return original(self)

    with patched_attribute(responses.GlueResponse, "update_table", update_table):
        yield
