"""template.yaml deployed onto the embedded emulator (moto, in this process).

LocalStack reads the real template: parameters and conditions, each function's
code folder, handler, timeout and environment (Globals merged), the state
machines' DefinitionUri and DefinitionSubstitutions. It creates the buckets,
keys, topic and functions in moto and runs executions of the real ASL with the
handlers in-process (see emulator.py for what is emulated).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from snaplake_local.emulator import (
    DEFAULT_ACCOUNT,
    AthenaEmulator,
    DynamoDbExportEmulator,
    InProcessLambdas,
    LocalFunction,
    RdsExportEmulator,
    VirtualClock,
    enforce_expected_bucket_owner,
    fast_forward_step_functions,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
STACK = "snaplake-local"
_SUB = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class UnsupportedTemplate(Exception):
    """template.yaml uses something the local runner cannot resolve."""


def load_template(path: Path = PROJECT_ROOT / "template.yaml") -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import loads

    return _plain(loads(path.read_text(), str(path)))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def render_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """Fill an ASL file's ${Name} placeholders the way DefinitionSubstitutions does."""
    missing = sorted(set(_SUB.findall(definition)) - set(substitutions))
    if missing:
        raise UnsupportedTemplate(f"DefinitionSubstitutions lacks {', '.join(missing)}")
    return _SUB.sub(lambda m: str(substitutions[m.group(1)]), definition)


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


@dataclass
class LocalStack:
    parameters: dict[str, str] = field(default_factory=dict)
    template_path: Path = PROJECT_ROOT / "template.yaml"
    region: str = REGION
    account: str = DEFAULT_ACCOUNT
    # Overrides POWERTOOLS_LOG_LEVEL of every function (the demo keeps handlers quiet).
    function_log_level: str | None = None

    def __post_init__(self) -> None:
        self.template = load_template(self.template_path)
        self.clock = VirtualClock()
        self.lambdas = InProcessLambdas()
        self.rds_exports = RdsExportEmulator(self.clock, self.account, self.region)
        self.dynamodb_exports = DynamoDbExportEmulator(self.clock, self.account, self.region)
        self.athena = AthenaEmulator(self.clock, self.account, self.region)
        self.params = self._parameters()
        self.conditions: dict[str, bool] = {}
        self.physical: dict[str, dict[str, str]] = {}
        self.state_machines: dict[str, str] = {}
        self._exit = ExitStack()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalStack:
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
        self._exit.enter_context(self.lambdas.patched())
        self._exit.enter_context(self.rds_exports.patched())
        self._exit.enter_context(self.dynamodb_exports.patched())
        self._exit.enter_context(self.athena.patched())
        self._deploy()
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ parameters and intrinsics
    def _parameters(self) -> dict[str, str]:
        declared = self.template.get("Parameters", {})
        values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise UnsupportedTemplate(f"unknown template parameters: {', '.join(sorted(unknown))}")
        values.update({k: str(v) for k, v in self.parameters.items()})
        missing = [name for name in declared if name not in values]
        if missing:
            raise UnsupportedTemplate(f"template parameters without a value: {', '.join(missing)}")
        return values

    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self._evaluate(self.template["Conditions"][name]))
        return self.conditions[name]

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._evaluate(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self._get_att(resource, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self._evaluate(v) for k, v in arg[1].items()})
                return _SUB.sub(lambda m: str(variables[m.group(1)] if m.group(1) in variables else self._sub_name(m.group(1))), text)
            if key == "Fn::If":
                name, yes, no = arg
                return self._evaluate(yes if self._condition(name) else no)
            if key == "Fn::Equals":
                left, right = (self._evaluate(x) for x in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(x) for x in arg)
            if key == "Fn::Or":
                return any(self._evaluate(x) for x in arg)
            if key == "Condition":
                return self._condition(arg)
            if key == "Fn::Join":
                separator, items = arg
                items = self._evaluate(items)
                return separator.join(str(i) for i in (items if isinstance(items, list) else [items]))
            if key.startswith("Fn::"):
                raise UnsupportedTemplate(f"the local runner does not resolve {key}")
        return {k: v for k, v in ((k, self._evaluate(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def _sub_name(self, name: str) -> str:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self._get_att(resource, attribute)
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
                return [item.strip() for item in self.params[name].split(",") if item.strip()]
            return self.params[name]
        return self.physical[name]["ref"]

    def _get_att(self, resource: str, attribute: str) -> str:
        return self.physical[resource][attribute]

    # ------------------------------------------------------------------ deployment
    def _resources(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, spec in self.template["Resources"].items():
            if "Condition" in spec and not self._condition(spec["Condition"]):
                continue
            yield logical_id, spec

    def _deploy(self) -> None:
        s3, kms, sns, sqs, iam = (self.client(s) for s in ("s3", "kms", "sns", "sqs", "iam"))
        arn = f"arn:aws:{{}}:{self.region}:{self.account}:{{}}"
        resources = dict(self._resources())
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
        for logical_id, spec in resources.items():
            if spec["Type"] == "AWS::S3::Bucket":
                self._create_bucket(s3, logical_id, spec)
            elif spec["Type"] == "AWS::DynamoDB::Table":
                props = self._evaluate(spec["Properties"])
                self.client("dynamodb").create_table(
                    TableName=self.physical[logical_id]["ref"],
                    KeySchema=props["KeySchema"],
                    AttributeDefinitions=props["AttributeDefinitions"],
                    BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
                )
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
                substitutions = self._evaluate(props.get("DefinitionSubstitutions", {}))
                definition = render_definition(definition, substitutions)
                created = sfn.create_state_machine(
                    name=self.physical[logical_id]["Name"], definition=definition, roleArn=role, type=props.get("Type", "STANDARD")
                )
                self.state_machines[logical_id] = created["stateMachineArn"]

    def _create_bucket(self, s3: Any, logical_id: str, spec: dict[str, Any]) -> None:
        name = self.physical[logical_id]["ref"]
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        props = self._evaluate(spec.get("Properties", {}))
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
            **self._evaluate(globals_.get("Environment", {}).get("Variables", {})),
            **self._evaluate(props.get("Environment", {}).get("Variables", {})),
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

    # ------------------------------------------------------------------ using it
    def function(self, logical_id: str) -> LocalFunction:
        return self.lambdas.functions[self.physical[logical_id]["ref"]]

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


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


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
