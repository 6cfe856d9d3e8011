"""Fakes of librdkafka's producer for unit tests of the delivery modes (no broker)."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message

Refusal = Callable[[str, bytes | None], KafkaError | None]


class FakeProducer:
    """librdkafka's producer as far as Outputs uses it: produce() checks the size, poll() reports."""

    def __init__(self, max_bytes: int = 1_000_000, refuse: Refusal | None = None) -> None:
        self.max_bytes = max_bytes
        self.limits: dict[str, int] = {}
        self.refuse = refuse or (lambda _topic, _value: None)
        self.sent: list[Message] = []
        #: Errors produce() raises at once for a topic (librdkafka knows it unauthorized, or the
        #: transaction must be aborted first), until removed.
        self.refuse_at_once: dict[str, KafkaError] = {}
        self._reports: list[tuple[Callable[..., None], KafkaError | None, Message]] = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None) -> None:
        if (at_once := self.refuse_at_once.get(topic)) is not None:
            raise KafkaException(at_once)
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v or b"") for k, v in headers)
        if size > self.limits.get(topic, self.max_bytes):
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        message = Message(topic=topic, value=value, key=key, headers=headers)
        error = self.refuse(topic, value)
        if error is None:
            self.sent.append(message)
        self._reports.append((on_delivery, error, message))

    def poll(self, _timeout: float = 0) -> int:
        reports, self._reports = self._reports, []
        for callback, error, message in reports:
            callback(error, message)
        return len(reports)

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return 0


class FakeTransactionalProducer(FakeProducer):
    """Adds the transactional calls; `fail` maps a call name to the KafkaError it raises once."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.fail: dict[str, KafkaError] = {}
        self.committed_offsets: list[list[object]] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        error = self.fail.pop(name, None)
        if error is not None:
            raise KafkaException(error)

    def init_transactions(self, _timeout: float) -> None:
        self._step("init")

    def begin_transaction(self) -> None:
        self._step("begin")

    def send_offsets_to_transaction(self, offsets, _metadata, _timeout: float) -> None:
        self._step("send_offsets")
        self.committed_offsets.append(list(offsets))

    def commit_transaction(self, _timeout: float) -> None:
        self.poll()
        self._step("commit")

    def abort_transaction(self, _timeout: float) -> None:
        self._step("abort")

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return 0
