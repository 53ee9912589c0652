"""Settings read from environment variables: defaults, and errors that name the variable."""

from __future__ import annotations

import pytest
from snaplake.core.errors import ConfigError, SnaplakeError
from snaplake.rds.layout import DEFAULT_KEY_TEMPLATE, SEED_KEY_TEMPLATE
from snaplake.rds.settings import CopySettings as LakeSettings
from snaplake.rds.settings import ExportSettings, SourceSelection

EXPORT_ENV = {
    "EXPORT_BUCKET": "snaplake-exports",
    "EXPORT_PREFIX": "exports/rds",
    "EXPORT_ROLE_ARN": "arn:aws:iam::123456789012:role/snaplake-export",
    "EXPORT_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555",
}
LAKE_ENV = {"LAKE_BUCKET": "snaplake-lake"}


# ---------------------------------------------------------------- SourceSelection


def test_source_selection_splits_and_trims_the_comma_separated_list() -> None:
    selection = SourceSelection.from_env({"SOURCE_IDENTIFIERS": " world-aurora , shop-* ,, "})

    assert selection.patterns == ("world-aurora", "shop-*")


def test_source_selection_accepts_a_single_star() -> None:
    assert SourceSelection.from_env({"SOURCE_IDENTIFIERS": "*"}).patterns == ("*",)


@pytest.mark.parametrize("env", [{}, {"SOURCE_IDENTIFIERS": ""}, {"SOURCE_IDENTIFIERS": " , ,"}])
def test_source_selection_without_identifiers_is_a_config_error_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="SOURCE_IDENTIFIERS"):
        SourceSelection.from_env(env)


# ---------------------------------------------------------------- ExportSettings


def test_export_settings_read_every_variable() -> None:
    settings = ExportSettings.from_env({**EXPORT_ENV, "EXPORT_ONLY": "world.public.users, world.sales ,"})

    assert settings == ExportSettings(
        bucket="snaplake-exports",
        prefix="exports/rds",
        role_arn=EXPORT_ENV["EXPORT_ROLE_ARN"],
        kms_key_arn=EXPORT_ENV["EXPORT_KMS_KEY_ARN"],
        export_only=("world.public.users", "world.sales"),
    )


def test_export_settings_defaults_to_no_prefix_and_whole_snapshot() -> None:
    env = {k: v for k, v in EXPORT_ENV.items() if k != "EXPORT_PREFIX"}

    settings = ExportSettings.from_env(env)

    assert settings.prefix == ""
    assert settings.export_only == ()


def test_export_settings_trim_whitespace_and_slashes() -> None:
    settings = ExportSettings.from_env({**EXPORT_ENV, "EXPORT_BUCKET": "  snaplake-exports ", "EXPORT_PREFIX": " /exports/rds/ "})

    assert settings.bucket == "snaplake-exports"
    assert settings.prefix == "exports/rds"


@pytest.mark.parametrize("name", ["EXPORT_BUCKET", "EXPORT_ROLE_ARN", "EXPORT_KMS_KEY_ARN"])
@pytest.mark.parametrize("missing_as", [None, "", "   "])
def test_missing_required_export_variable_is_a_config_error_naming_it(name: str, missing_as: str | None) -> None:
    env = {k: v for k, v in EXPORT_ENV.items() if k != name}
    if missing_as is not None:
        env[name] = missing_as

    with pytest.raises(ConfigError, match=name):
        ExportSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EXPORT_ROLE_ARN", "snaplake-export"),
        ("EXPORT_ROLE_ARN", "arn:aws:iam::123456789012:user/snaplake"),
        ("EXPORT_BUCKET", "Snaplake_Exports"),
        ("EXPORT_BUCKET", "ab"),
        ("EXPORT_BUCKET", "-snaplake"),
        ("EXPORT_BUCKET", "s3://snaplake-exports"),
        ("EXPORT_BUCKET", "a" * 64),
        ("EXPORT_PREFIX", "exports:rds"),
        ("EXPORT_PREFIX", "exports/../rds"),
        ("EXPORT_PREFIX", "exports//rds"),
        ("EXPORT_PREFIX", ".."),
    ],
)
def test_invalid_export_variable_is_a_config_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ExportSettings.from_env({**EXPORT_ENV, name: value})


# ---------------------------------------------------------------- LakeSettings


def test_lake_settings_defaults() -> None:
    settings = LakeSettings.from_env(LAKE_ENV)

    assert settings.bucket == "snaplake-lake"
    assert settings.prefix == ""
    assert settings.key_template.text == DEFAULT_KEY_TEMPLATE
    assert settings.kms_key_arn is None
    assert settings.bucket_owner is None
    assert settings.source_bucket_owner is None
    assert settings.object_acl == "bucket-owner-full-control"
    assert settings.batch_size == 1000
    assert settings.workers == 8
    assert settings.threads == 16


def test_lake_settings_read_every_variable() -> None:
    settings = LakeSettings.from_env(
        {
            "LAKE_BUCKET": "snaplake-lake",
            "LAKE_PREFIX": "/lake/",
            "LAKE_KEY_TEMPLATE": f" {SEED_KEY_TEMPLATE} ",
            "LAKE_KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/abc",
            "LAKE_BUCKET_OWNER": "210987654321",
            "EXPORT_BUCKET_OWNER": "123456789012",
            "LAKE_OBJECT_ACL": "",
            "COPY_BATCH_SIZE": "250",
            "COPY_WORKERS": "3",
            "COPY_THREADS": "4",
        }
    )

    assert settings.prefix == "lake"
    assert settings.key_template.text == SEED_KEY_TEMPLATE
    assert settings.kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/abc"
    assert settings.bucket_owner == "210987654321"
    assert settings.source_bucket_owner == "123456789012"
    assert settings.object_acl is None
    assert (settings.batch_size, settings.workers, settings.threads) == (250, 3, 4)


def test_blank_optional_lake_variables_fall_back_to_defaults() -> None:
    settings = LakeSettings.from_env(
        {
            **LAKE_ENV,
            "LAKE_KEY_TEMPLATE": "  ",
            "LAKE_KMS_KEY_ARN": " ",
            "LAKE_BUCKET_OWNER": "",
            "COPY_BATCH_SIZE": " ",
            "COPY_WORKERS": "",
        }
    )

    assert settings.key_template.text == DEFAULT_KEY_TEMPLATE
    assert settings.kms_key_arn is None
    assert settings.bucket_owner is None
    assert settings.batch_size == 1000
    assert settings.workers == 8


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("COPY_BATCH_SIZE", "1", 1),
        ("COPY_BATCH_SIZE", "5000", 5000),
        ("COPY_WORKERS", "1", 1),
        ("COPY_WORKERS", "40", 40),
        ("COPY_THREADS", "1", 1),
        ("COPY_THREADS", " 64 ", 64),
    ],
)
def test_copy_tuning_accepts_the_bounds(name: str, value: str, expected: int) -> None:
    settings = LakeSettings.from_env({**LAKE_ENV, name: value})

    assert {"COPY_BATCH_SIZE": settings.batch_size, "COPY_WORKERS": settings.workers, "COPY_THREADS": settings.threads}[name] == expected


@pytest.mark.parametrize("missing_as", [None, "", "  "])
def test_missing_lake_bucket_is_a_config_error_naming_it(missing_as: str | None) -> None:
    env = {} if missing_as is None else {"LAKE_BUCKET": missing_as}

    with pytest.raises(ConfigError, match="LAKE_BUCKET"):
        LakeSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAKE_BUCKET", "Snaplake-Lake"),
        ("LAKE_BUCKET", "snaplake_lake"),
        ("LAKE_PREFIX", "lake:rds"),
        ("LAKE_PREFIX", "lake/../other"),
        ("LAKE_PREFIX", "lake//rds"),
        ("LAKE_BUCKET_OWNER", "1234"),
        ("LAKE_BUCKET_OWNER", "12345678901a"),
        ("EXPORT_BUCKET_OWNER", "1234567890123"),
        ("LAKE_OBJECT_ACL", "public-read"),
        ("LAKE_OBJECT_ACL", "private"),
        ("COPY_BATCH_SIZE", "ten"),
        ("COPY_BATCH_SIZE", "0"),
        ("COPY_BATCH_SIZE", "5001"),
        ("COPY_BATCH_SIZE", "1.5"),
        ("COPY_WORKERS", "0"),
        ("COPY_WORKERS", "41"),
        ("COPY_THREADS", "65"),
        ("COPY_THREADS", "-1"),
    ],
)
def test_invalid_lake_variable_is_a_config_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        LakeSettings.from_env({**LAKE_ENV, name: value})


def test_invalid_lake_key_template_is_rejected_when_settings_are_read() -> None:
    with pytest.raises(SnaplakeError):
        LakeSettings.from_env({**LAKE_ENV, "LAKE_KEY_TEMPLATE": "rds/{table}/{batch}/{file}"})


@pytest.mark.parametrize(
    "template",
    ["rds/{table}/{batch}/{file}", "rds/{schema}/{table}/{snapshot_time}/{batch}/{file}", "rds/{table}/time={snapshot_time}:00/{file}"],
)
def test_invalid_lake_key_template_is_a_config_error_naming_the_variable(template: str) -> None:
    with pytest.raises(ConfigError, match="LAKE_KEY_TEMPLATE"):
        LakeSettings.from_env({**LAKE_ENV, "LAKE_KEY_TEMPLATE": template})


def test_a_source_account_stack_must_write_under_its_own_accounts_folder() -> None:
    """The lake owner's bucket policy lets account 210987654321 write only under <prefix>/accounts/210987654321/."""
    env = {"LAKE_BUCKET": "central-lake", "LAKE_BUCKET_OWNER": "123456789012", "STACK_ACCOUNT_ID": "210987654321"}
    with pytest.raises(ConfigError, match=r"LAKE_PREFIX.*accounts/210987654321"):
        LakeSettings.from_env({**env, "LAKE_PREFIX": "lake"})
    with pytest.raises(ConfigError, match="accounts/210987654321"):
        LakeSettings.from_env({**env, "LAKE_PREFIX": "lake/accounts/999999999999"})
    assert LakeSettings.from_env({**env, "LAKE_PREFIX": "lake/accounts/210987654321"}).prefix == "lake/accounts/210987654321"
    assert LakeSettings.from_env({**env, "LAKE_PREFIX": "accounts/210987654321"}).prefix == "accounts/210987654321"


def test_the_lake_owner_itself_writes_anywhere_under_its_prefix() -> None:
    env = {"LAKE_BUCKET": "central-lake", "LAKE_PREFIX": "lake", "STACK_ACCOUNT_ID": "123456789012"}
    assert LakeSettings.from_env({**env, "LAKE_BUCKET_OWNER": "123456789012"}).prefix == "lake"
    assert LakeSettings.from_env(env).prefix == "lake"


# ---------------------------------------------------------------- CatalogSettings: retention


def test_retention_defaults_to_keeping_everything() -> None:
    from snaplake.catalog import CatalogSettings

    settings = CatalogSettings.from_env(LAKE_ENV)

    assert not settings.snapshot_retention.enabled and not settings.change_log_retention.enabled


def test_retention_parameters_are_read_into_the_policies() -> None:
    from snaplake.catalog import CatalogSettings

    env = {**LAKE_ENV, "SNAPSHOT_RETENTION_COUNT": "3", "SNAPSHOT_RETENTION_DAYS": "30", "CHANGE_LOG_RETENTION_DAYS": "7"}
    settings = CatalogSettings.from_env(env)

    assert (settings.snapshot_retention.keep_count, settings.snapshot_retention.keep_days) == (3, 30)
    assert (settings.change_log_retention.keep_count, settings.change_log_retention.keep_days) == (0, 7)


def test_change_log_retention_with_partition_projection_is_a_config_error() -> None:
    """The change log's dt/hour are projected as ranges: no single hour can leave the queries before its data."""
    from snaplake.catalog import CatalogSettings

    with pytest.raises(ConfigError, match="CATALOG_MODE=projection"):
        CatalogSettings.from_env({**LAKE_ENV, "CATALOG_MODE": "projection", "CHANGE_LOG_RETENTION_DAYS": "1"})


@pytest.mark.parametrize("variable", ["SNAPSHOT_RETENTION_COUNT", "SNAPSHOT_RETENTION_DAYS"])
def test_snapshot_retention_works_with_partition_projection(variable: str) -> None:
    """snapshot_time is an enum of the landed snapshots in projection mode: retention takes values out of it."""
    from snaplake.catalog import CatalogSettings

    settings = CatalogSettings.from_env({**LAKE_ENV, "CATALOG_MODE": "projection", variable: "1"})

    assert settings.options.projection and settings.snapshot_retention.enabled


@pytest.mark.parametrize("variable", ["SNAPSHOT_RETENTION_COUNT", "SNAPSHOT_RETENTION_DAYS", "CHANGE_LOG_RETENTION_DAYS"])
def test_retention_in_a_source_accounts_stack_is_a_config_error(variable: str) -> None:
    """A source account may write to the central lake bucket but never delete: its purge would fail every run."""
    from snaplake.catalog import CatalogSettings

    env = {**LAKE_ENV, "LAKE_CATALOG_ROLE": "arn:aws:iam::123456789012:role/snaplake-LakeCatalogRole-X", "STACK_ACCOUNT_ID": "111111111111"}
    with pytest.raises(ConfigError, match=r"LAKE_CATALOG_ROLE is set .* never delete"):
        CatalogSettings.from_env({**env, variable: "3"})
    assert not CatalogSettings.from_env(env).snapshot_retention.enabled


def test_a_negative_retention_is_a_config_error_naming_the_variable() -> None:
    from snaplake.catalog import CatalogSettings

    with pytest.raises(ConfigError, match="SNAPSHOT_RETENTION_COUNT"):
        CatalogSettings.from_env({**LAKE_ENV, "SNAPSHOT_RETENTION_COUNT": "-1"})
