"""JSON log lines: one object per line, extra fields included, secrets never added by us."""

from __future__ import annotations

import io
import json
import logging

from consumer import logs


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
