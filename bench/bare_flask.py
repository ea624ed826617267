"""The baseline for bench/till.py: a bare Flask app with one JSON POST endpoint.

Served by the same gunicorn settings and measured with the same wrk settings as the loyalty app,
it shows what Flask + gunicorn alone cost on this machine, so the till figures can be read
against it:

    .venv/bin/gunicorn -w 3 -b 127.0.0.1:8100 --chdir bench 'bare_flask:app'
    wrk -t16 -c16 -d15s -s bench/till.lua http://127.0.0.1:8100 -- bare
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask("bare")


@app.post("/echo")
def echo() -> dict[str, Any]:
    body = request.get_json()
    return {"ok": True, "length": len(body.get("code", "")), "points": {"available": 0}}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
