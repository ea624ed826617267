"""The pages' Flask extensions and the settings they share: CSRF on every form (Flask-WTF),
every string through gettext (Flask-Babel), and the signed cookie session the till signs in
with. `init_pages` is called once by web.registry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from loyalty.settings import Settings

# The languages with a catalogue: ru, ca and zh join as their catalogues are written
# (web/translations/<lang>/LC_MESSAGES/messages.po); until then the browser's choice falls back
# to English rather than a page that says lang="ru" in English.
LANGUAGES = ("en",)
DEFAULT_LANGUAGE = "en"
SESSION_LIFETIME = timedelta(hours=12)
# Environments served over plain http on a developer's machine or in tests.
_LOCAL_ENVIRONMENTS = frozenset({"development", "testing", "test"})

csrf = CSRFProtect()
babel = Babel()


def chosen_language() -> str:
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def _page_config(app: Flask, settings: Settings) -> None:
    local = settings.env in _LOCAL_ENVIRONMENTS or app.testing
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not local,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The API is called with bearer keys, not cookies: CSRF is checked by the pages'
        # blueprints only (csrf.protect() in their before_request), not on every POST.
        WTF_CSRF_CHECK_DEFAULT=False,
        BABEL_DEFAULT_LOCALE=DEFAULT_LANGUAGE,
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    # Enforced in tests too (TESTING does not turn it off); an explicit override still wins.
    app.config.setdefault("WTF_CSRF_ENABLED", True)


def init_pages(app: Flask) -> None:
    settings: Settings = app.extensions["loyalty.settings"]
    _page_config(app, settings)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=chosen_language)
