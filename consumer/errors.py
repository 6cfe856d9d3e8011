"""The exception tree. Every error has a stable `code` (a metric label and a DLQ header)."""

from __future__ import annotations


class ImportClosureError(Exception):
    """Root of every error this package raises on purpose."""

    code: str = "error"


class ConfigError(ImportClosureError, ValueError):
    """A bad setting; start-up stops with this one message."""

    code = "bad_config"


class PolicyError(ImportClosureError, ValueError):
    """A policy file that cannot be loaded; `problems` holds every `path: message` found."""

    code = "bad_policy"

    def __init__(self, problems: list[str] | tuple[str, ...], source: str = "<policy>") -> None:
        self.problems = tuple(problems)
        self.source = source
        msg = f"{source}: invalid policy: " + "; ".join(self.problems)
        super().__init__(msg)


class PolicyTestError(PolicyError):
    """A policy test file (`test-policy`) that cannot be read as cases; `problems` as PolicyError's."""

    code = "bad_policy_test"

    def __init__(self, problems: list[str] | tuple[str, ...], source: str = "<tests>") -> None:
        super().__init__(problems, source)
        self.args = (f"{source}: invalid policy test file: " + "; ".join(self.problems),)


class DecodeError(ImportClosureError, ValueError):
    """A message value that cannot be turned into a listing.

    `code` is one of: empty, unknown_magic, unknown_schema_id, unknown_fingerprint, truncated,
    corrupt, invalid_utf8, schema_mismatch, too_large (past a limit in codec/limits.py),
    invalid_listing; and, for JSON Lines input only, invalid_json and too_long.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class SchemaSourceUnavailable(ImportClosureError):
    """The schema registry could not be reached; transient, so the batch is retried, not dead-lettered."""

    code = "registry_unavailable"


class DeliveryError(ImportClosureError):
    """The broker refused our output for a reason that retrying will not fix."""

    code = "delivery_failed"


class RebalanceError(ImportClosureError):
    """An exception raised inside a rebalance callback, wrapped so the loop can see it."""

    code = "rebalance_failed"


class KafkaClientError(ImportClosureError):
    """An error no message can get past (authorization, fencing, fatal client state): stop."""

    code = "kafka_error"


class BrokerUnavailable(ImportClosureError):
    """No broker answered, or did not acknowledge, within a tool's deadline (topics, produce-sample,
    a lag reading)."""

    code = "broker_unavailable"
