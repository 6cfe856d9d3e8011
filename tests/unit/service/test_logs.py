"""JSON log lines: one object per line, extra fields included, secrets never added by us."""

from __future__ import annotations

import io
import json
import logging

import pytest

from consumer.service import logs


class TestJsonLogs:
    def test_one_json_object_per_line_with_extra_fields(self) -> None:
        """The event, level and logger come first; `extra=` fields follow as keys."""
        stream = io.StringIO()
        logs.configure("INFO", stream)
        logging.getLogger("consumer.worker").info(
            "partitions assigned", extra={"partitions": ["listing-created[0]"], "count": 1}
        )
        entry = json.loads(stream.getvalue())
        assert entry["event"] == "partitions assigned"
        assert entry["level"] == "info"
        assert entry["logger"] == "consumer.worker"
        assert entry["partitions"] == ["listing-created[0]"]
        assert entry["count"] == 1
        assert entry["ts"].endswith("Z")

    def test_level_filters_and_exceptions_are_kept(self) -> None:
        """Below the configured level nothing is written; a logged exception carries its traceback."""
        stream = io.StringIO()
        logs.configure("WARNING", stream)
        log = logging.getLogger("consumer.test")
        log.info("hidden")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        entry = json.loads(lines[0])
        assert entry["event"] == "failed"
        assert "ValueError: boom" in entry["exception"]

    def test_configure_replaces_handlers(self) -> None:
        """Calling configure twice does not duplicate lines."""
        stream = io.StringIO()
        logs.configure("INFO", stream)
        logs.configure("INFO", stream)
        logging.getLogger("consumer.test").info("once")
        assert len(stream.getvalue().splitlines()) == 1


class TestLibraryLoggers:
    @pytest.mark.parametrize(
        ("level", "libraries", "logger", "record_level", "shown"),
        [
            ("INFO", False, "consumer.worker", logging.INFO, True),
            ("INFO", False, "consumer", logging.INFO, True),
            ("INFO", False, "httpx2", logging.INFO, False),
            ("INFO", False, "httpx", logging.INFO, False),
            ("INFO", False, "httpx2", logging.WARNING, True),
            ("INFO", False, "consumerish", logging.INFO, False),
            ("INFO", False, "confluent_kafka.schema_registry", logging.INFO, False),
            ("DEBUG", False, "httpcore2.http11", logging.DEBUG, False),
            ("DEBUG", False, "consumer.worker", logging.DEBUG, True),
            ("DEBUG", True, "httpcore2.http11", logging.DEBUG, True),
            ("INFO", True, "httpx2", logging.INFO, False),
            ("ERROR", False, "urllib3", logging.WARNING, False),
        ],
        ids=[
            "ours-info",
            "our-root-logger",
            "httpx2-info-hidden",
            "httpx-info-hidden",
            "library-warning-shown",
            "prefix-is-not-ours",
            "confluent-kafka-info-hidden",
            "debug-alone-keeps-libraries-quiet",
            "ours-debug",
            "debug-and-libraries-asked",
            "libraries-need-debug",
            "level-above-warning-applies-to-all",
        ],
    )
    def test_libraries_log_warnings_only_unless_asked_at_debug(
        self, level: str, libraries: bool, logger: str, record_level: int, shown: bool
    ) -> None:
        """Third-party loggers (httpx2 logs every request URL at INFO) stay at WARNING by default."""
        stream = io.StringIO()
        logs.configure(level, stream, libraries=libraries)
        logging.getLogger(logger).log(record_level, "HTTP Request: GET http://sr:8081/x")
        assert bool(stream.getvalue()) is shown
