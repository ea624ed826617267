"""The language switch: GET /language/<code>?next=/till/ keeps the choice in the `lang` cookie
for a year (web.extensions.chosen_language reads it before the browser's Accept-Language) and
goes back to `next` when it is a path of this site, else to the till."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, redirect, request
from werkzeug.wrappers import Response

from web.extensions import LANGUAGE_COOKIE, LANGUAGES
from web.redirects import local_path

blp = Blueprint("language", __name__)

COOKIE_LIFETIME = timedelta(days=365)
# Where the switch goes when `next` is missing or not a path of this site.


@blp.get("/language/<code>")
def choose(code: str) -> Response:
    if code not in LANGUAGES:
        abort(404)
    answer = redirect(local_path(request.args.get("next")))
    answer.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=COOKIE_LIFETIME,
        path="/",
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )
    return answer
