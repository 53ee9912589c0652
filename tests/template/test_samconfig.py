"""samconfig.toml: the deploy environments (dev, source account, lake account) and their parameter overrides.

Overrides are parsed with SAM CLI's own parser (samcli.cli.types.CfnParameterOverridesType), so a value SAM CLI
would split or truncate shows up here as a mismatch.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from ._support import SAMCONFIG_PATH, template

pytestmark = pytest.mark.skipif(not SAMCONFIG_PATH.exists(), reason="no samconfig.toml yet: these checks start when it appears")


def _config() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as handle:
        return tomllib.load(handle)


def _envs() -> dict[str, dict[str, Any]]:
    return {name: table for name, table in _config().items() if isinstance(table, dict)}


def _deploy(env: str) -> dict[str, Any]:
    return dict(_envs()[env].get("deploy", {}).get("parameters", {}))


def _deploy_envs() -> list[str]:
    return [env for env in _envs() if _deploy(env)]


def _raw_overrides(env: str) -> Any:
    return _deploy(env).get("parameter_overrides", _envs()[env].get("global", {}).get("parameters", {}).get("parameter_overrides"))


def _overrides(env: str) -> dict[str, str]:
    """What `sam deploy --config-env <env>` passes to CloudFormation, parsed by SAM CLI itself."""
    from samcli.cli.types import CfnParameterOverridesType

    raw = _raw_overrides(env)
    return {} if raw is None else dict(CfnParameterOverridesType().convert(raw, None, None))


def _intended_overrides(env: str) -> dict[str, str]:
    """What the file's author wrote: each array item split at its first '=', or the string form split like a shell."""
    raw = _raw_overrides(env)
    items = raw if isinstance(raw, list) else shlex.split(raw or "")
    return dict(str(item).split("=", 1) for item in items)


def _is_source_env(env: str) -> bool:
    """Copies into a lake bucket that another account owns."""
    overrides = _overrides(env)
    return bool(overrides.get("LakeBucketName")) and bool(re.fullmatch(r"\d{12}", overrides.get("LakeBucketOwner", "")))


def _is_lake_env(env: str) -> bool:
    """Creates the lake bucket in its own account."""
    return not _overrides(env).get("LakeBucketName")


def test_samconfig_is_version_0_1() -> None:
    assert _config().get("version") == 0.1


def test_samconfig_has_default_source_and_lake_environments() -> None:
    envs = _deploy_envs()
    assert "default" in envs, "no [default.deploy.parameters]"
    others = [env for env in envs if env != "default"]
    assert len(others) >= 2, f"only {others} besides default"
    assert any(_is_source_env(env) for env in others), "no env copying into another account's lake (LakeBucketName + LakeBucketOwner)"
    assert any(_is_lake_env(env) for env in others), "no env creating the lake bucket (no LakeBucketName)"


def test_every_deploy_table_names_its_stack_and_capabilities() -> None:
    bad = [env for env in _deploy_envs() if not _deploy(env).get("stack_name") or not _deploy(env).get("capabilities")]
    assert not bad, f"deploy tables without stack_name or capabilities: {bad}"


def test_every_override_names_a_template_parameter() -> None:
    parameters = set(template().get("Parameters", {}))
    unknown = [f"{env}: {key}" for env in _deploy_envs() for key in _overrides(env) if key not in parameters]
    assert not unknown, "parameter_overrides keys that are not template Parameters: " + ", ".join(unknown)


def test_every_required_parameter_is_given_in_every_env() -> None:
    required = [name for name, spec in template().get("Parameters", {}).items() if "Default" not in spec]
    missing = [f"{env}: {name}" for env in _deploy_envs() for name in required if name not in _overrides(env)]
    assert not missing, "parameters without a Default that an env does not set: " + ", ".join(missing)


def test_sam_cli_reads_every_override_value_as_written() -> None:
    changed = [
        f"{env}: {key}={intended!r} reaches CloudFormation as {_overrides(env).get(key)!r}"
        for env in _deploy_envs()
        for key, intended in _intended_overrides(env).items()
        if _overrides(env).get(key) != intended.strip("\"'")
    ]
    assert not changed, "\n".join(changed)


def test_every_override_value_is_allowed_by_its_parameter() -> None:
    parameters = template().get("Parameters", {})
    bad: list[str] = []
    for env in _deploy_envs():
        for key, value in _overrides(env).items():
            spec = parameters.get(key, {})
            pattern = spec.get("AllowedPattern")
            if pattern and spec.get("Type") == "String" and not re.fullmatch(pattern, value):
                bad.append(f"{env}: {key}={value!r} does not match AllowedPattern {pattern}")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(v) for v in allowed]:
                bad.append(f"{env}: {key}={value!r} is not one of AllowedValues")
            if spec.get("Type") == "Number" and "MinValue" in spec and float(value) < float(spec["MinValue"]):
                bad.append(f"{env}: {key}={value!r} is below MinValue")
    assert not bad, "\n".join(bad)


def test_a_source_env_registers_its_tables_in_the_lakes_catalog_under_its_own_account_prefix() -> None:
    """The lake's LakeCatalogRole lets a source account write only <lake GlueDatabasePrefix>accounts_<its id>_* (ADR 0016)."""
    lakes = [_overrides(env) for env in _deploy_envs() if _is_lake_env(env) and _overrides(env).get("LakeWriterAccounts")]
    sources = [env for env in _deploy_envs() if _is_source_env(env)]
    assert lakes and sources
    for env in sources:
        overrides = _overrides(env)
        account = overrides["LakePrefix"].rsplit("/", 1)[-1]  # <lake LakePrefix>/accounts/<its id> (docs/security.md)
        role_account = overrides.get("LakeCatalogRoleArn", "").split(":")[4:5]
        assert role_account == [overrides["LakeBucketOwner"]], f"{env}: LakeCatalogRoleArn must be the lake account's role"
        assert any(account in lake["LakeWriterAccounts"].split(",") for lake in lakes), env
        expected = {lake.get("GlueDatabasePrefix", "") + f"accounts_{account}_" for lake in lakes}
        assert overrides.get("GlueDatabasePrefix") in expected, f"{env}: GlueDatabasePrefix must be one of {expected}"
        assert overrides.get("DynamoDbCurrentTables") == "off", env
