"""The one AWS account every emulated resource belongs to (moto's default account)."""

DEFAULT_ACCOUNT = "123456789012"
