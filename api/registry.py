"""The REST API's blueprints and its OpenAPI document, registered on the app by server.app."""

from __future__ import annotations

from flask import Blueprint, Flask
from swagger_ui_bundle import swagger_ui_path

from api.cards import views as cards
from api.coupons import views as coupons
from api.keys import views as keys
from api.ledger import views as ledger
from api.members import views as members
from api.offers import views as offers
from api.openapi import create_api
from api.pos import views as pos
from api.program import views as program
from api.referrals import views as referrals
from api.reports import views as reports
from api.rules import views as rules
from api.tiers import views as tiers

BLUEPRINTS = (
    pos,
    members,
    cards,
    ledger,
    tiers,
    rules,
    program,
    reports,
    keys,
    offers,
    coupons,
    referrals,
)


def register_api(app: Flask) -> None:
    # Before the API's own: its template of the documentation page is used instead of
    # flask-smorest's (which has an inline script the Content-Security-Policy refuses).
    app.register_blueprint(
        Blueprint(
            "api_docs_assets",
            __name__,
            template_folder="docs/templates",
            static_folder="docs/static",
            static_url_path="/api/docs/assets",
        )
    )
    api = create_api(app)
    for module in BLUEPRINTS:
        api.register_blueprint(module.blp)
    app.register_blueprint(
        Blueprint(
            "api_docs_static",
            __name__,
            static_folder=swagger_ui_path,
            static_url_path="/api/docs/static",
        )
    )
