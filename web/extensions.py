"""The pages' Flask extensions and the settings they share: CSRF on every form (Flask-WTF),
every string through gettext (Flask-Babel), and the signed cookie session the till signs in
with. `init_pages` is called once by web.registry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from loyalty.settings import Settings

# The languages with a catalogue (web/translations/<lang>/LC_MESSAGES/messages.po; English is
# the source). "zh" is Simplified Chinese: a browser's zh-CN, zh-Hans or zh-SG (and zh-TW, for
# want of a Traditional catalogue) picks it. Each with its name in its own language, for the
# switch.
LANGUAGES = ("en", "ru", "ca", "zh")
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "ca": "Català", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
# Set by the switch (web/language.py); wins over the browser's Accept-Language.
LANGUAGE_COOKIE = "lang"
SESSION_LIFETIME = timedelta(hours=12)
# Environments served over plain http on a developer's machine or in tests.
_LOCAL_ENVIRONMENTS = frozenset({"development", "testing", "test"})
TRANSLATIONS = Path(__file__).parent / "translations"

csrf = CSRFProtect()
babel = Babel()


def chosen_language() -> str:
    """The `lang` cookie of the switch when it names a language we have, else the best match
    of the browser's Accept-Language, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def current_language() -> str:
    return str(get_locale() or DEFAULT_LANGUAGE)


def _language_context() -> dict[str, object]:
    return {"lang": current_language(), "languages": LANGUAGE_NAMES}


def _vary_on_language(response: Response) -> Response:
    """A page's words depend on Accept-Language and the `lang` cookie: caches must know."""
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))
    return response


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
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS),
    )
    # Enforced in tests too (TESTING does not turn it off); an explicit override still wins.
    app.config.setdefault("WTF_CSRF_ENABLED", True)


def init_pages(app: Flask) -> None:
    settings: Settings = app.extensions["loyalty.settings"]
    _page_config(app, settings)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=chosen_language)
    # every page's template knows its language (`<html lang="{{ lang }}">`) and the switch's
    # choices (`languages`: code -> name, for links to /language/<code>?next=...)
    app.context_processor(_language_context)
    app.after_request(_vary_on_language)
