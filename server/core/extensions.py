"""Extensions are module-level objects, bound to an app by `init_app` in server.app."""

from __future__ import annotations

from flask import g, request
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy

from loyalty.db import Base


def _rate_limit_key() -> str:
    # Tills are limited per terminal (many share one shop's IP), everyone else per address.
    terminal = g.get("terminal")
    if terminal is not None:
        return f"terminal:{terminal.id}"
    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
limiter = Limiter(key_func=_rate_limit_key)
