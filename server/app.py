"""The application factory, and the one place that knows every part: the request plumbing
(server/core), the REST API (api/) and the pages (web/). `create_app()` serves gunicorn (through
server.wsgi) and `make run`; tests pass their settings and clock."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.registry import register_api
from loyalty.clock import Clock, SystemClock
from loyalty.db import engine_options, prepare_engine
from loyalty.deadlines import apply_deadlines
from loyalty.settings import Settings, load_settings
from server.core import operations
from server.core.errors import register_error_handlers
from server.core.extensions import db
from server.core.limits import init_limits
from server.core.logs import configure_logging
from server.core.requests import register_request_lifecycle
from server.core.shared import SharedState, Sightings
from web.registry import register_pages


def _config(settings: Settings) -> dict[str, Any]:
    return {
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(settings.database_url, settings.deadlines),
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
    }


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    config_override: dict[str, Any] | None = None,
) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    app = Flask("loyalty", static_folder=None)
    app.config.update(_config(settings))
    app.config.update(config_override or {})
    app.extensions["loyalty.settings"] = settings
    app.extensions["loyalty.clock"] = clock or SystemClock()

    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
        apply_deadlines(db.engine, settings.deadlines)
    shared = SharedState(settings.redis_url, timeout=settings.redis_timeout)
    app.extensions["loyalty.shared"] = shared
    app.extensions["loyalty.sightings"] = Sightings(shared)
    init_limits(app, shared, per_minute=settings.identify_failures_per_minute)
    register_request_lifecycle(app, access_log=settings.access_log)
    register_error_handlers(app)
    app.register_blueprint(operations.blp)
    register_api(app)
    register_pages(app)
    return app
