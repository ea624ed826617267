"""The pages' blueprints, registered on the app by server.app."""

from __future__ import annotations

from flask import Flask

from web import views


def register_pages(app: Flask) -> None:
    app.register_blueprint(views.blp)
