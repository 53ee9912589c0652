"""CopyBatch's other way to land an export file: rewritten with its table's PII rule (snaplake.core.pii) instead of
copied server-side, so the raw values of dropped and hashed columns never reach the lake.

Only the data files of tables with a rule are rewritten (PlanCopy marks them: `CopyItem.rewrite` holds the rule's
fingerprint); every other object is still copied server-side. The file is read to scratch storage, rewritten one row
group at a time (memory holds one row group, not the file) and uploaded to the key a copy would have; its metadata
records the source ETag and the fingerprint, so a re-run skips it exactly when the same source went through the same
rule and key (its size differs from the source's, so size says nothing here).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from snaplake.core.errors import InvalidPiiRules
from snaplake.core.pii import RDS, PiiProtector, TableRule
from snaplake.core.s3 import Bucket
from snaplake.rds.copy_plan import SOURCE_ETAG_METADATA, CopyItem

PII_METADATA = "snaplake-pii"  # the fingerprint of the rule and key a rewritten object went through
_READ_CHUNK = 8 * 1024**2


def table_rule(pii: PiiProtector, item: CopyItem, table: str) -> TableRule:
    """The rule of the item's table (`<database>.<table>`), which must still be the one PlanCopy planned with."""
    rule = pii.rule(RDS, table)
    if rule is None or pii.fingerprint(rule) != item.rewrite:
        raise InvalidPiiRules(
            f"the PII rules or key of {table!r} changed since PlanCopy planned {item.dest!r}: re-run the input (it plans the copy again)"
        )
    return rule


def already_rewritten(lake: Bucket, item: CopyItem) -> bool:
    """The object is in the lake, rewritten from this very source object with this very rule and key."""
    head = lake.metadata(item.dest)
    found = head.get("Metadata", {}) if head is not None else {}
    return head is not None and found.get(SOURCE_ETAG_METADATA) == item.etag and found.get(PII_METADATA) == item.rewrite


def rewrite_item(lake: Bucket, export: Bucket, item: CopyItem, pii: PiiProtector, rule: TableRule) -> None:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="snaplake-rewrite-") as scratch:
        source, target = os.path.join(scratch, "source.parquet"), os.path.join(scratch, "landed.parquet")
        body = export.open_stream(item.source)
        with open(source, "wb") as file:
            shutil.copyfileobj(body, file, _READ_CHUNK)
        reader = pq.ParquetFile(source)
        with pq.ParquetWriter(target, pii.protect_schema(reader.schema_arrow, rule), compression="zstd") as writer:
            for index in range(reader.num_row_groups):
                writer.write_table(pii.protect_table(reader.read_row_group(index), rule))
        lake.write_file(target, item.dest, metadata={SOURCE_ETAG_METADATA: item.etag, PII_METADATA: item.rewrite})
