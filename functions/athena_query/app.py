"""Athena SQL jobs (statemachine/athena_etl.asl.json): validate a job list, then run each job step by step.

One handler, two requests:
- `{"job", "index", "execution", "startTime", "cursor"}` (RunJobStep): runs the job's next steps and
  returns the cursor; a started query's QueryExecutionId is polled by the state machine, never slept on here.
- anything else is the state machine's input, `{"jobs": [...]}` (ValidateJobs): every job is checked
  before any runs; returns the normalized jobs.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from snaplake.athena import AthenaClients, AthenaSettings, run_job_step, validate_jobs
from snaplake.core import aws
from snaplake.core.handler_input import event_object

logger = Logger()
SETTINGS = AthenaSettings.from_env()
CLIENTS = AthenaClients(athena=aws.client("athena"), glue=aws.client("glue"), s3=aws.client("s3"))


@logger.inject_lambda_context
@aws.named_errors
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = event_object(event)
    if "job" in request:
        cursor = run_job_step(CLIENTS, SETTINGS, request, context.get_remaining_time_in_millis)
        logger.info("job step", extra={k: cursor[k] for k in ("runId", "phase", "step", "steps", "queryExecutionId", "done")})
        return cursor
    jobs = validate_jobs(request.get("jobs"), SETTINGS)
    logger.info("jobs validated", extra={"jobs": [job["name"] for job in jobs]})
    return {"jobs": jobs}
