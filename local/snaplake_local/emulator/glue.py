"""Glue as AWS serves it: UpdateTable with a VersionId updates only that version of the table.

AWS Glue's UpdateTable takes an optional `VersionId` (optimistic locking): when the table's current
version is another one, the update fails with ConcurrentModificationException and changes nothing.
moto accepts any VersionId and overwrites the table, so two writers that read, merge and write the same
table would silently lose one's columns. Each table update is also applied atomically here (one at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from snaplake_local.emulator.clock import patched_attribute

_ONE_UPDATE_AT_A_TIME = threading.RLock()


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
