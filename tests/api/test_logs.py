"""Log lines as an operator's tools read them: one JSON object per line, with the id of the
request that wrote it (the id the till sent, or the one made for it), and the fields the
caller gave; a person's terminal can have plain text instead."""

from __future__ import annotations

import json
import logging

from flask import Flask

from server.core.logs import formatter


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("loyalty.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_line_logged_while_serving_a_request_carries_its_id(app: Flask) -> None:
    lines: list[str] = []

    @app.get("/log-something")
    def log_something() -> str:
        lines.append(formatter("json").format(_record("card blocked", store="DEMO-01")))
        return "ok"

    answer = app.test_client().get("/log-something", headers={"X-Request-ID": "till-4:77"})

    assert answer.headers["X-Request-ID"] == "till-4:77"
    [line] = lines
    logged = json.loads(line)
    assert logged["request_id"] == "till-4:77"
    assert (logged["event"], logged["level"], logged["store"]) == (
        "card blocked",
        "warning",
        "DEMO-01",
    )
    assert logged["timestamp"].endswith("Z")


def test_outside_a_request_a_line_has_no_request_id_and_text_is_one_line() -> None:
    logged = json.loads(formatter("json").format(_record("expiry done", members=3)))
    assert "request_id" not in logged
    assert logged["members"] == 3
    text = formatter("text").format(_record("expiry done"))
    assert "expiry done" in text
    assert "\n" not in text.strip()
