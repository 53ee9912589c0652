"""template.yaml deployed onto the embedded emulator (moto, in this process).

EmulatedStack reads the real template (template.py: parameters and conditions, intrinsic
functions), each function's code folder, handler, timeout and environment (Globals merged), the
state machines' DefinitionUri and DefinitionSubstitutions. It creates the buckets, keys, topic
and functions in moto and runs executions of the real ASL with the handlers in-process (see the
snaplake_local.emulator package for what is emulated).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError

from snaplake_local.emulator import (
    DEFAULT_ACCOUNT,
    AthenaEmulator,
    DistributedMapRuns,
    DynamoDbExportEmulator,
    EventBridgeEmulator,
    FirehoseDelivery,
    InProcessLambdas,
    LocalFunction,
    RdsExportEmulator,
    VirtualClock,
    enforce_catalog_ids,
    enforce_expected_bucket_owner,
    enforce_table_version_ids,
    fast_forward_step_functions,
)
from snaplake_local.template import PROJECT_ROOT, TemplateEvaluator, load_template, render_definition

__all__ = ["PROJECT_ROOT", "REGION", "STACK", "EmulatedStack", "Execution", "load_template", "render_definition"]

REGION = "eu-west-1"
STACK = "snaplake-local"
_CLIENT_LOCK = threading.Lock()


@functools.cache
def _client_session() -> boto3.session.Session:
    """One session for every stack's clients in this process. moto gives each mock a new default session, which
    would parse the service models again (a quarter of a stack's deploy time); every stack uses the same fake
    credentials (__enter__), so only the parsed models carry over."""
    return boto3.session.Session()


@dataclass
class Execution:
    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    @property
    def state_transitions(self) -> int:
        """State transitions as Step Functions bills them: one per state entered."""
        return sum(1 for event in self.history if event["type"].endswith("StateEntered"))

    def step_outputs(self, state: str) -> list[Any]:
        """The output of each time the named state was left, in order."""
        return [
            json.loads(event["stateExitedEventDetails"]["output"])
            for event in self.history
            if event["type"].endswith("StateExited") and event["stateExitedEventDetails"]["name"] == state
        ]


class _Deployment:
    """Deploying template.yaml onto moto: the half of EmulatedStack that creates the resources
    (KMS keys, buckets, topics, queues, DynamoDB tables, functions, state machines) and records
    their physical ids for Ref and Fn::GetAtt; `client` gives boto3 clients on the emulator.
    EmulatedStack's __post_init__ sets these attributes."""

    region: str
    account: str
    function_log_level: str | None
    template: dict[str, Any]
    evaluator: TemplateEvaluator
    lambdas: InProcessLambdas
    physical: dict[str, dict[str, str]]
    state_machines: dict[str, str]

    def client(self, service: str) -> Any:
        with _CLIENT_LOCK:  # a boto3 session does not make clients safely from several threads at once
            return _client_session().client(service, region_name=self.region)  # type: ignore[call-overload]

    def _deploy(self) -> None:
        s3, kms, sns, sqs, iam = (self.client(s) for s in ("s3", "kms", "sns", "sqs", "iam"))
        arn = f"arn:aws:{{}}:{self.region}:{self.account}:{{}}"
        if self.evaluator.params.get("PiiRules") and not self.evaluator.params.get("PiiKeyCiphertext"):
            self._make_pii_key(kms)
        resources = dict(self.evaluator.resources())
        for logical_id, spec in resources.items():
            kind = spec["Type"]
            if kind == "AWS::KMS::Key":
                key = kms.create_key(Description=logical_id)["KeyMetadata"]
                self.physical[logical_id] = {"ref": key["KeyId"], "Arn": key["Arn"]}
            elif kind == "AWS::S3::Bucket":
                name = f"{STACK}-{logical_id.lower()}"
                self.physical[logical_id] = {"ref": name, "Arn": f"arn:aws:s3:::{name}"}
            elif kind == "AWS::SNS::Topic":
                topic = sns.create_topic(Name=f"{STACK}-{logical_id}")["TopicArn"]
                self.physical[logical_id] = {"ref": topic, "Arn": topic, "TopicName": f"{STACK}-{logical_id}"}
            elif kind == "AWS::SQS::Queue":
                name = f"{STACK}-{logical_id}"
                url = sqs.create_queue(QueueName=name)["QueueUrl"]
                self.physical[logical_id] = {"ref": url, "Arn": arn.format("sqs", name), "QueueName": name}
            elif kind == "AWS::IAM::Role":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": name, "Arn": f"arn:aws:iam::{self.account}:role/{name}"}
            elif kind == "AWS::Logs::LogGroup":
                self.physical[logical_id] = {"ref": f"/{STACK}/{logical_id}", "Arn": arn.format("logs", f"log-group:/{STACK}/{logical_id}")}
            elif kind == "AWS::Serverless::LayerVersion":
                self.physical[logical_id] = {"ref": arn.format("lambda", f"layer:{logical_id}:1")}
            elif kind == "AWS::Serverless::Function":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": name, "Arn": arn.format("lambda", f"function:{name}")}
            elif kind == "AWS::DynamoDB::Table":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": name, "Arn": arn.format("dynamodb", f"table/{name}")}
            elif kind == "AWS::Serverless::StateMachine":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": arn.format("states", f"stateMachine:{name}"), "Name": name}
            elif kind == "AWS::Events::Rule":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": name, "Arn": arn.format("events", f"rule/{name}")}
            elif kind == "AWS::Glue::Database":
                self.physical[logical_id] = {"ref": self.evaluator.evaluate(spec["Properties"]["DatabaseInput"]["Name"])}
            elif kind == "AWS::Glue::Table":
                self.physical[logical_id] = {"ref": self.evaluator.evaluate(spec["Properties"]["TableInput"]["Name"])}
            elif kind == "AWS::Logs::LogStream":
                self.physical[logical_id] = {"ref": spec["Properties"]["LogStreamName"]}
            elif kind == "AWS::KinesisFirehose::DeliveryStream":
                name = f"{STACK}-{logical_id}"
                self.physical[logical_id] = {"ref": name, "Arn": arn.format("firehose", f"deliverystream/{name}")}
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::S3::Bucket":
                self._create_bucket(s3, logical_id, spec)
            elif spec["Type"] == "AWS::DynamoDB::Table":
                props = self.evaluator.evaluate(spec["Properties"])
                self.client("dynamodb").create_table(
                    TableName=self.physical[logical_id]["ref"],
                    KeySchema=props["KeySchema"],
                    AttributeDefinitions=props["AttributeDefinitions"],
                    BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
                )
        for spec in resources.values():
            if spec["Type"] == "AWS::Glue::Database":
                self.client("glue").create_database(DatabaseInput=self.evaluator.evaluate(spec["Properties"]["DatabaseInput"]))
        for spec in resources.values():
            if spec["Type"] == "AWS::Glue::Table":
                props = self.evaluator.evaluate(spec["Properties"])
                self.client("glue").create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
        self.notifications_queue = sqs.create_queue(QueueName=f"{STACK}-notifications")["QueueUrl"]
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::SNS::Topic":
                queue_arn = sqs.get_queue_attributes(QueueUrl=self.notifications_queue, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                sns.subscribe(TopicArn=self.physical[logical_id]["ref"], Protocol="sqs", Endpoint=queue_arn)
        role = iam.create_role(
            RoleName=f"{STACK}-functions",
            AssumeRolePolicyDocument=json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
            ),
        )["Role"]["Arn"]
        lambda_client = self.client("lambda")
        globals_ = self.template.get("Globals", {}).get("Function", {})
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::Serverless::Function":
                self._create_function(lambda_client, role, logical_id, spec["Properties"], globals_)
        sfn = self.client("stepfunctions")
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::Serverless::StateMachine":
                props = spec["Properties"]
                definition = (PROJECT_ROOT / props["DefinitionUri"]).read_text()
                substitutions = self.evaluator.evaluate(props.get("DefinitionSubstitutions", {}))
                definition = render_definition(definition, substitutions)
                created = sfn.create_state_machine(
                    name=self.physical[logical_id]["Name"], definition=definition, roleArn=role, type=props.get("Type", "STANDARD")
                )
                self.state_machines[logical_id] = created["stateMachineArn"]
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::Events::Rule":
                self._create_rule(logical_id, self.evaluator.evaluate(spec["Properties"]))

    def _make_pii_key(self, kms: Any) -> None:
        """PiiKmsKeyArn and PiiKeyCiphertext, made as docs/governance.md says (a deployment is given them; the emulator's
        keys exist only once it runs, so a local stack with PiiRules makes its own)."""
        from snaplake.core.pii import KEY_CONTEXT

        key_arn = kms.create_key(Description="PiiKmsKeyArn (local)")["KeyMetadata"]["Arn"]
        made = kms.generate_data_key_without_plaintext(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=KEY_CONTEXT)
        self.evaluator.params.update(PiiKmsKeyArn=key_arn, PiiKeyCiphertext=base64.b64encode(made["CiphertextBlob"]).decode())

    def _create_rule(self, logical_id: str, props: dict[str, Any]) -> None:
        """An EventBridge rule and its targets (on a bus of its own name, created here as the stack's user would)."""
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        if bus != "default" and bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
            events.create_event_bus(Name=bus)
        name = self.physical[logical_id]["ref"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State=props.get("State", "ENABLED"))
        events.put_targets(Rule=name, EventBusName=bus, Targets=props["Targets"])

    def _create_bucket(self, s3: Any, logical_id: str, spec: dict[str, Any]) -> None:
        name = self.physical[logical_id]["ref"]
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        props = self.evaluator.evaluate(spec.get("Properties", {}))
        if "BucketEncryption" in props:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})

    def _create_function(self, client: Any, role: str, logical_id: str, props: dict[str, Any], globals_: dict[str, Any]) -> None:
        environment = {
            **self.evaluator.evaluate(globals_.get("Environment", {}).get("Variables", {})),
            **self.evaluator.evaluate(props.get("Environment", {}).get("Variables", {})),
        }
        environment = {k: str(v) for k, v in environment.items()}
        if self.function_log_level:
            environment["POWERTOOLS_LOG_LEVEL"] = self.function_log_level
        name = self.physical[logical_id]["ref"]
        timeout = int(props.get("Timeout", globals_.get("Timeout", 3)))
        memory = int(props.get("MemorySize", globals_.get("MemorySize", 128)))
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as archive:
            archive.writestr("app.py", "# runs in-process, see snaplake_local.emulator\n")
        client.create_function(
            FunctionName=name,
            Runtime=props.get("Runtime", globals_.get("Runtime", "python3.13")),
            Role=role,
            Handler=props["Handler"],
            Code={"ZipFile": zipped.getvalue()},
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": environment},
        )
        self.lambdas.add(
            LocalFunction(
                logical_id, name, PROJECT_ROOT / props["CodeUri"], props["Handler"], environment, timeout, memory, self.region, self.account
            )
        )


@dataclass
class EmulatedStack(_Deployment):
    """template.yaml deployed onto moto in this process, for `with EmulatedStack(parameters) as stack:`;
    its executions run the real state machines with the handlers in-process."""

    parameters: dict[str, str] = field(default_factory=dict)
    template_path: Path = PROJECT_ROOT / "template.yaml"
    region: str = REGION
    account: str = DEFAULT_ACCOUNT
    # Overrides POWERTOOLS_LOG_LEVEL of every function (the demo keeps handlers quiet).
    function_log_level: str | None = None

    def __post_init__(self) -> None:
        self.template = load_template(self.template_path)
        # On a whole hour: DynamoDB windows end on whole hours, so a run's window does not depend on the wall clock's minute.
        self.clock = VirtualClock(datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
        self.lambdas = InProcessLambdas()
        self.rds_exports = RdsExportEmulator(self.clock, self.account, self.region)
        self.dynamodb_exports = DynamoDbExportEmulator(self.clock, self.account, self.region)
        self.athena = AthenaEmulator(self.clock, self.account, self.region)
        self.distributed_maps = DistributedMapRuns()
        self.event_bridge = EventBridgeEmulator()
        self.evaluator = TemplateEvaluator(self.template, self.parameters, self.region, self.account, STACK)
        self.params = self.evaluator.params
        self.conditions = self.evaluator.conditions
        self.physical = self.evaluator.physical
        self.state_machines = {}
        self._exit = ExitStack()
        self._threads_before: set[threading.Thread] = set()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> EmulatedStack:
        self._threads_before = set(threading.enumerate())
        for key, value in {
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "snaplake-local",
            # moto's EC2 backend (which its RDS uses) otherwise loads thousands of sample machine images per stack.
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        }.items():
            self._exit.enter_context(_env(key, value))
        self._exit.enter_context(_env("AWS_ENDPOINT_URL", None))
        from moto import mock_aws

        self._exit.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        self._exit.enter_context(_validate_each_definition_once())
        self._exit.enter_context(fast_forward_step_functions(self.clock))
        self._exit.enter_context(enforce_expected_bucket_owner())
        self._exit.enter_context(enforce_table_version_ids())
        self._exit.enter_context(enforce_catalog_ids())
        self._exit.enter_context(self.lambdas.patched())
        self._exit.enter_context(self.rds_exports.patched())
        self._exit.enter_context(self.dynamodb_exports.patched())
        self._exit.enter_context(self.athena.patched())
        self._exit.enter_context(self.distributed_maps.patched())
        self._exit.enter_context(self.event_bridge.patched())
        try:
            self._deploy()
        except BaseException:
            self._exit.close()  # a stack that failed to deploy leaves no emulator patched in for the next one
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stop_executions()
        finally:
            self._exit.close()

    def _stop_executions(self, timeout_seconds: float = 60) -> None:
        """Stop the executions still running and join every daemon thread started while the stack was
        open (moto runs each execution, Map iteration and Parallel branch in one): Python does not wait
        for daemon threads at exit, and one still in a handler while the interpreter finalizes can abort
        the process (non-daemon threads are joined by Python itself). Raises TimeoutError naming the
        threads still alive after `timeout_seconds` (an in-process handler cannot be interrupted)."""
        deadline = time.monotonic() + timeout_seconds
        started = [t for t in threading.enumerate() if t.daemon and t not in self._threads_before]
        while any(t.is_alive() for t in started) and time.monotonic() < deadline:
            self._request_stops()
            for thread in started:
                thread.join(0.05)
        alive = [t.name for t in started if t.is_alive()]
        if alive:
            raise TimeoutError(f"threads the emulated stack started still run after {timeout_seconds}s: {alive}")

    def _request_stops(self) -> None:
        """StopExecution for every running execution. moto refuses one whose worker has not yet
        built its environment (AttributeError); the caller asks again on its next round."""
        sfn = self.client("stepfunctions")
        for machine in self.state_machines.values():
            for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
                try:
                    sfn.stop_execution(executionArn=execution["executionArn"], error="EmulatedStackClosed")
                except (AttributeError, ClientError):  # not started yet (AttributeError in moto), or ended meanwhile
                    continue

    # ------------------------------------------------------------------ using it
    def function(self, logical_id: str) -> LocalFunction:
        return self.lambdas.functions[self.physical[logical_id]["ref"]]

    def firehose(self, logical_id: str = "FirehoseLakeDeliveryStream") -> FirehoseDelivery:
        """The delivery stream as Firehose would run it (snaplake_local.emulator.firehose): put_record_batch delivers."""
        props = self.evaluator.evaluate(self.template["Resources"][logical_id]["Properties"])
        destination = props["ExtendedS3DestinationConfiguration"]
        (processor,) = destination["ProcessingConfiguration"]["Processors"]
        lambda_arn = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}["LambdaArn"]
        function = self.lambdas.functions[lambda_arn.split(":function:")[1]]
        name = self.physical[logical_id]["ref"]
        return FirehoseDelivery(name, destination, function.invoke, self.client("s3"), self.client("glue"), self.clock.now)

    def environment(self, logical_id: str) -> dict[str, str]:
        return self.function(logical_id).environment

    def start(self, state_machine: str, event: Any, name: str | None = None) -> str:
        sfn = self.client("stepfunctions")
        started = sfn.start_execution(
            stateMachineArn=self.state_machines[state_machine], input=json.dumps(event), name=name or str(uuid.uuid4())
        )
        return str(started["executionArn"])

    def wait(self, execution_arn: str, timeout_seconds: float = 300) -> Execution:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_seconds
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still running after {timeout_seconds}s")
            time.sleep(0.01)
        history: list[dict[str, Any]] = []
        token = None
        while True:
            page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
            history.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                break
        output = described.get("output")
        return Execution(
            arn=execution_arn,
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
        )

    def run(self, state_machine: str, event: Any, timeout_seconds: float = 300) -> Execution:
        return self.wait(self.start(state_machine, event), timeout_seconds)

    def notifications(self) -> list[dict[str, Any]]:
        """Failure notifications published to the template's SNS topics so far (drains them)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.notifications_queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                body = envelope.get("Message", "")
                try:
                    found.append({"subject": envelope.get("Subject"), "message": json.loads(body)})
                except ValueError:
                    found.append({"subject": envelope.get("Subject"), "message": body})
                sqs.delete_message(QueueUrl=self.notifications_queue, ReceiptHandle=message["ReceiptHandle"])

    def lake_objects(self, prefix: str = "") -> dict[str, int]:
        """Key -> size of everything in the lake bucket."""
        s3 = self.client("s3")
        bucket = self.lake_bucket
        found = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["Size"]
        return found

    @property
    def lake_bucket(self) -> str:
        return self.environment("PlanCopyFunction")["LAKE_BUCKET"]

    @property
    def export_bucket(self) -> str:
        return self.environment("StartExportFunction")["EXPORT_BUCKET"]


@contextmanager
def _env(key: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(key)
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


# State machine definitions moto has validated in this process.
_VALID_DEFINITIONS: set[str] = set()


@contextmanager
def _validate_each_definition_once() -> Iterator[None]:
    """moto parses a state machine's definition to validate it on every CreateStateMachine (~0.2 s per file, every
    stack); a definition that passed once passes again. An invalid one is never remembered and fails every time."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    validate = StepFunctionsParserBackend._validate_definition

    def validate_once(definition: str) -> None:
        if definition not in _VALID_DEFINITIONS:
            validate(definition=definition)
            _VALID_DEFINITIONS.add(definition)

    # mock restores the staticmethod itself, not the plain function getattr returns.
    with mock.patch.object(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_once)):
        yield
