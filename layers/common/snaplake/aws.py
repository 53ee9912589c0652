"""The one place boto3 clients are made.

Handlers create their clients once at module level (reused across warm
invocations) and pass them into library functions. `AWS_ENDPOINT_URL` is
honoured by botocore itself, so the same code talks to AWS or to an emulator.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=64)


def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]
