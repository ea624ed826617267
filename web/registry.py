"""The pages' blueprints, registered on the app by server.app."""

from __future__ import annotations

from flask import Flask

from web import language, views
from web.extensions import init_pages
from web.member import views as member
from web.till import views as till


def register_pages(app: Flask) -> None:
    init_pages(app)
    app.register_blueprint(views.blp)
    app.register_blueprint(language.blp)
    app.register_blueprint(till.blp)
    app.register_blueprint(member.blp)
