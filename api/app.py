"""The application factory: `create_app()` serves gunicorn and `make run`; tests pass settings."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response
from swagger_ui_bundle import swagger_ui_path

from api import members, pos, reports, rules, staff_members, system, tiers
from api.errors import register_error_handlers
from api.extensions import db, limiter, openapi
from loyalty.clock import Clock, SystemClock
from loyalty.db import engine_options, prepare_engine
from loyalty.settings import Settings, load_settings

API_DOCS_STATIC = "/api/docs/static/"


def _config(settings: Settings) -> dict[str, Any]:
    return {
        "SECRET_KEY": settings.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(settings.database_url),
        "MAX_CONTENT_LENGTH": settings.max_body_bytes,
        "RATELIMIT_STORAGE_URI": settings.redis_url or "memory://",
        # Headers would cost every request a Redis round trip; api/errors.py sets Retry-After
        # on the 429s themselves.
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_SWALLOW_ERRORS": True,  # a Redis outage must not stop the tills
        "API_TITLE": "Loyalty till API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": API_DOCS_STATIC,  # served from the project, never a CDN
        "API_SPEC_OPTIONS": {
            "components": {
                "securitySchemes": {
                    "staffKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "a staff key (`ls_…`) with scopes, shown once by "
                        "`loyalty create-staff-key`; console and back-office calls",
                    },
                    "terminalKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "a "
                        "terminal's API key, shown once by `loyalty create-terminal`",
                    },
                }
            },
            "security": [{"terminalKey": []}, {"staffKey": []}],
        },
    }


def _commit_once(response: Response) -> Response:
    """The one place a request commits: after the view succeeded, or roll back everything."""
    if response.status_code < 400:  # noqa: PLR2004
        db.session.commit()
    else:
        db.session.rollback()
    return response


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    config_override: dict[str, Any] | None = None,
) -> Flask:
    settings = settings or load_settings()
    app = Flask("loyalty", static_folder=None)
    app.config.update(_config(settings))
    app.config.update(config_override or {})
    app.extensions["loyalty.settings"] = settings
    app.extensions["loyalty.clock"] = clock or SystemClock()

    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
    limiter.init_app(app)
    openapi.init_app(app)
    register_error_handlers(app)

    openapi.register_blueprint(pos.blp)
    openapi.register_blueprint(members.blp)
    openapi.register_blueprint(system.program_blp)
    openapi.register_blueprint(rules.blp)
    openapi.register_blueprint(tiers.blp)
    openapi.register_blueprint(staff_members.blp)
    openapi.register_blueprint(reports.blp)
    app.register_blueprint(system.health_blp)
    app.register_blueprint(
        Blueprint(
            "api_docs_static",
            __name__,
            static_folder=swagger_ui_path,
            static_url_path=API_DOCS_STATIC.rstrip("/"),
        )
    )
    from web.views import blp as web_blp  # noqa: PLC0415 - web imports api helpers

    app.register_blueprint(web_blp)
    app.after_request(_commit_once)
    logging.basicConfig(level=logging.INFO)
    return app
