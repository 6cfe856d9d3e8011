"""Settings: defaults < YAML file < IMPORT_CLOSURE_* environment < options, and redaction of secrets.

May import: consumer.errors and the standard library; nothing of Kafka, metrics or the service.
"""

from consumer.config.settings import (
    AT_LEAST_ONCE,
    CONFIG_FILE_ENV,
    ENV_PREFIX,
    EXACTLY_ONCE,
    GUARANTEES,
    KAFKA_ENV_PREFIX,
    LOCAL_BOOTSTRAP,
    SCHEMA_REGISTRY_ENV_PREFIX,
    TEST_ENV_PREFIX,
    Settings,
    load,
    replay_settings,
    settings_help,
)

__all__ = [
    "AT_LEAST_ONCE",
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "EXACTLY_ONCE",
    "GUARANTEES",
    "KAFKA_ENV_PREFIX",
    "LOCAL_BOOTSTRAP",
    "SCHEMA_REGISTRY_ENV_PREFIX",
    "TEST_ENV_PREFIX",
    "Settings",
    "load",
    "replay_settings",
    "settings_help",
]
