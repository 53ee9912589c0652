"""snaplake: the shared library behind the snaplake Lambda handlers, one subpackage per pipeline.

    core       AWS clients and error codes, the S3 adapter, settings, shared errors, limits, names, times
    rds        RDS/Aurora snapshot exports into the lake
    dynamodb   DynamoDB exports into the lake (and dynamodb.parquet: DynamoDB JSON -> Parquet)
    streams    the DynamoDB Streams change log and the Firehose transform
    catalog    RegisterCatalog: Glue tables and partitions of what landed
    athena     Athena SQL jobs
    permissions  every AWS call the code makes, for the least-privilege test

Imports run one way: core <- rds, dynamodb <- streams; core <- catalog <- athena.
"""

__version__ = "0.1.0"
