"""Who has to deal with a Kafka error: one message (dead-letter it), the operator, or nobody (retry).

- Per-message errors are properties of one record (too large, rejected by the topic): no retry
  can help it, but the next record is fine, so the record is dead-lettered and the stream goes on.
- Authorization errors and fencing are properties of the deployment: no message can get past
  them, so the worker stops with one line and the orchestrator's restart makes them visible.
- Authentication errors are reported by name in /readyz and the logs but do not stop the
  worker: librdkafka keeps reconnecting, and a credential fixed on the broker side (or an OAuth
  endpoint that recovers) heals without a restart.
"""

from __future__ import annotations

from typing import Final

from confluent_kafka import KafkaError

#: Errors that say "this record", with the dead-letter code each one gets.
PER_MESSAGE_CODES: Final[dict[int, str]] = {
    KafkaError.MSG_SIZE_TOO_LARGE: "output_too_large",
    KafkaError.INVALID_MSG_SIZE: "output_too_large",
    KafkaError.INVALID_RECORD: "output_rejected",
    KafkaError.INVALID_MSG: "output_rejected",
    KafkaError.POLICY_VIOLATION: "output_rejected",
}

AUTHORIZATION: Final = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
FENCING: Final = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError._FENCED,
        KafkaError.TRANSACTION_COORDINATOR_FENCED,
    }
)
AUTHENTICATION: Final = frozenset(
    {KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._AUTHENTICATION, KafkaError._SSL}
)
#: Connection failures librdkafka already logs itself (as FAIL lines): ours would be a duplicate.
CONNECTION: Final = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}
)


def per_message_code(error: KafkaError) -> str | None:
    """The dead-letter code for an error that only this record has, else None."""
    return PER_MESSAGE_CODES.get(error.code())


def stops_worker(error: KafkaError) -> bool:
    """Errors no message can get past: fatal client state, authorization, fencing."""
    code = error.code()
    return error.fatal() or code in AUTHORIZATION or code in FENCING


def not_authorized(
    error: KafkaError,
    *,
    topic: str | None = None,
    topic_operation: str = "Read",
    group: str | None = None,
    transactional_id: str | None = None,
) -> str | None:
    """`not authorized: Write on topic T (TOPIC_AUTHORIZATION_FAILED)`: the ACL an authorization
    error says is missing, from what the failing call used; None for any other error.

    Resource types and operations are spelt as in the ACL table of docs/operations.md. An
    idempotent producer without Write on any topic is refused its producer id with
    CLUSTER_AUTHORIZATION_FAILED (KIP-679): what it lacks is Write on the topic it writes.
    """
    code = error.code()
    needed = None
    if code == KafkaError.TOPIC_AUTHORIZATION_FAILED and topic:
        needed = f"{topic_operation} on topic {topic}"
    elif code == KafkaError.GROUP_AUTHORIZATION_FAILED and group:
        needed = f"Read on group {group}"
    elif code == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED and transactional_id:
        needed = f"Write on transactional-id {transactional_id}"
    elif code == KafkaError.CLUSTER_AUTHORIZATION_FAILED and topic and topic_operation == "Write":
        needed = f"Write on topic {topic}"
    return None if needed is None else f"not authorized: {needed} ({error.name()})"


def describe(error: KafkaError) -> str:
    """`TOPIC_AUTHORIZATION_FAILED: Broker: Topic authorization failed`, for one log line."""
    return f"{error.name()}: {error.str()}"


def connection_problem(error: KafkaError) -> str | None:
    """What readiness and a failed start say for an error that keeps us from talking to Kafka at
    all: a TLS failure (e.g. an untrusted CA) or refused credentials; None for anything else."""
    code = error.code()
    if code == KafkaError._SSL:
        return f"TLS handshake with the broker failed: {describe(error)}"
    if code in AUTHENTICATION:
        return f"authentication failed: {describe(error)}"
    return None


def refused_output(topic: str, error: KafkaError) -> str:
    """One line for output the broker refuses for good, naming the topic, and the ACL to grant
    when it is an authorization failure."""
    missing = not_authorized(error, topic=topic, topic_operation="Write")
    if missing is not None:
        return f"{topic}: {missing}: {error.str()}"
    return f"{topic}: broker refused output: {describe(error)}"
