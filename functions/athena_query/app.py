"""Athena SQL jobs (statemachine/athena_etl.asl.json): load and validate a run, run each job step by step, and drop
the run's temporary tables at the end.

One handler, three requests:
- `{"job", "index", "execution", "startTime", "cursor"}` (RunJobStep): runs the job's next steps and
  returns the cursor; a started query's QueryExecutionId is polled by the state machine, never slept on here.
- `{"cleanup": {"jobs", "execution", "startTime"}}` (DropTemporaryTables): drops the run's temporary tables.
- `{"input": <the execution's input>, "execution", "startTime"}` (ValidateJobs), or the input itself as
  `sam local invoke` sends it (`{"jobs": [...]}`): the job list (inline or from `jobsFile`) with its variables
  applied, every job checked before any runs; returns the normalized jobs and the run's variables.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.athena import AthenaClients, AthenaSettings, drop_temporary_tables, load_run, run_job_step
from snaplake.core import aws
from snaplake.core.handler_input import event_object

logger = Logger()
SETTINGS = AthenaSettings.from_env()
CLIENTS = AthenaClients(athena=aws.client("athena"), glue=aws.client("glue"), s3=aws.client("s3"))
STATES = aws.client("stepfunctions")


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = event_object(event)
    if "job" in request:
        cursor = run_job_step(CLIENTS, SETTINGS, request, context.get_remaining_time_in_millis)
        logger.info("job step", extra={k: cursor[k] for k in ("runId", "phase", "step", "steps", "queryExecutionId", "done")})
        return cursor
    if "cleanup" in request:
        cleanup = event_object(request["cleanup"])
        result = drop_temporary_tables(CLIENTS.glue, CLIENTS.s3, SETTINGS, cleanup, context.get_remaining_time_in_millis)
        logger.info("temporary tables", extra=result)
        return result
    started = request if "input" in request else {"input": request}
    run = load_run(started["input"], SETTINGS, CLIENTS.s3, STATES, execution=started.get("execution"), start_time=started.get("startTime"))
    logger.info("jobs validated", extra={"jobs": [job["name"] for job in run["jobs"]], "variables": run["variables"]})
    return run
