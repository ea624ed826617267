"""The pages in English, Russian, Catalan and Chinese: the language from the `lang` cookie of the
switch, else the browser's Accept-Language, else English; every string of the code translated in
every catalogue, and every committed .mo the compiled .po."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import project_root
from tests.web.test_till_sign_in import csrf_token
from web.extensions import LANGUAGE_COOKIE, LANGUAGES
from web.language import local_path

WEB = project_root() / "web"
TRANSLATIONS = WEB / "translations"
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != "en")
# What a page of the till says in each language (the <h1> of the sign-in page).
SIGN_IN = "Sign in to the till"


def po_path(lang: str) -> Path:
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(lang: str) -> Catalog:
    with po_path(lang).open("rb") as po:
        return read_po(po, locale=lang)


def translations(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the catalogue (singular messages; the header left out)."""
    return {
        str(m.id): str(m.string)
        for m in read_catalog(lang)
        if m.id and isinstance(m.id, str) and isinstance(m.string, str)
    }


def extracted_from_code() -> set[str | tuple[str, ...]]:
    """Every msgid in web/ now, extracted as `make translations` does (web/babel.cfg)."""
    with (WEB / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


class _VisibleText(HTMLParser):
    """The text a person sees or hears: text nodes (not <script>/<style>) and the attributes
    that are read out or shown (title, placeholder, aria-label, alt, a button's value)."""

    SHOWN = ("title", "placeholder", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._hidden += 1
        found = dict(attrs)
        self.parts += [str(found[name]) for name in self.SHOWN if found.get(name)]
        if tag == "input" and found.get("type") in {"submit", "button"} and found.get("value"):
            self.parts.append(str(found["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(" ".join(data.split()))


def visible_text(answer: TestResponse) -> str:
    parser = _VisibleText()
    parser.feed(answer.get_data(as_text=True))
    return "\n".join(parser.parts)


def html_lang(answer: TestResponse) -> str | None:
    found = re.search(r'<html[^>]*\blang="([^"]*)"', answer.get_data(as_text=True))
    return found.group(1) if found else None


def says(text: str, english: str) -> bool:
    """The English string appears in the text as words (not inside a longer word)."""
    return re.search(rf"(?<!\w){re.escape(english)}(?!\w)", text) is not None


def assert_in_language(english_page: str, page: str, lang: str) -> None:
    """Every catalogue string the English page shows is shown translated on `page`, and no
    English string of the catalogue is left on it."""
    catalog = translations(lang)
    shown = [msgid for msgid in catalog if "%(" not in msgid and says(english_page, msgid)]
    assert shown, "the English page shows none of the catalogue's strings"
    for msgid in shown:
        assert catalog[msgid] in page, f"{lang}: {msgid!r} is not shown as {catalog[msgid]!r}"
    left = [msgid for msgid in catalog if says(page, msgid)]
    assert left == [], f"{lang}: English left on the page: {left}"


# -- the catalogues ---------------------------------------------------------------------------


def test_each_language_but_english_has_a_catalogue_and_nothing_else_does():
    found = {p.name for p in TRANSLATIONS.iterdir() if p.is_dir()}
    assert found == set(TRANSLATED)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_string_of_the_code_is_translated(lang: str):
    catalog = read_catalog(lang)
    in_code = extracted_from_code()
    assert SIGN_IN in in_code
    untranslated = []
    for msgid in in_code:
        message = catalog.get(msgid)
        strings = message.string if message is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if message is None or message.fuzzy or not all(strings):
            untranslated.append(msgid)
    assert untranslated == [], (
        f"{lang}: strings without a translation (run `make translations`, translate them in "
        f"{po_path(lang).relative_to(project_root())}, run it again): {untranslated}"
    )


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_placeholders_of_each_translation_are_the_originals(lang: str):
    for msgid, msgstr in translations(lang).items():
        wanted = sorted(re.findall(r"%\(\w+\)s", msgid))
        assert sorted(re.findall(r"%\(\w+\)s", msgstr)) == wanted, (lang, msgid, msgstr)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_committed_mo_is_the_compiled_po(lang: str):
    compiled = io.BytesIO()
    write_mo(compiled, read_catalog(lang))
    compiled.seek(0)
    mo_path = po_path(lang).with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing: run `make translations`"
    with mo_path.open("rb") as mo:
        committed = read_mo(mo)

    def messages(catalog: Catalog) -> dict[object, object]:
        return {m.id: m.string for m in catalog if m.id}

    assert messages(committed) == messages(read_mo(compiled)), (
        f"{mo_path} is not {po_path(lang).name} compiled: run `make translations`"
    )
    assert committed.plural_forms == read_catalog(lang).plural_forms


# -- the language a page is shown in ----------------------------------------------------------


def test_the_sign_in_page_is_english_by_default(client: FlaskClient):
    answer = client.get("/till/sign-in")
    assert answer.status_code == 200
    assert html_lang(answer) == "en"
    assert SIGN_IN in visible_text(answer)
    assert "Accept-Language" in answer.headers.get("Vary", "")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_sign_in_page_in_each_language_from_the_cookie(client: FlaskClient, lang: str):
    english = visible_text(client.get("/till/sign-in"))
    client.set_cookie(LANGUAGE_COOKIE, lang)
    answer = client.get("/till/sign-in", headers={"Accept-Language": "en"})
    assert answer.status_code == 200
    assert html_lang(answer) == lang
    assert_in_language(english, visible_text(answer), lang)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_sign_in_page_in_each_language_from_the_browser(client: FlaskClient, lang: str):
    english = visible_text(client.get("/till/sign-in"))
    answer = client.get("/till/sign-in", headers={"Accept-Language": lang})
    assert html_lang(answer) == lang
    assert_in_language(english, visible_text(answer), lang)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_sign_in_refusals_in_each_language(client: FlaskClient, lang: str):
    """What only a POST shows: the fields' messages, and the wrong username or password."""
    client.set_cookie(LANGUAGE_COOKIE, lang)
    catalog = translations(lang)
    empty = client.post(
        "/till/sign-in", data={"username": "", "password": "", "csrf_token": csrf_token(client)}
    )
    assert empty.status_code == 400
    page = visible_text(empty)
    for msgid in ("Enter your username.", "Enter your password."):
        assert catalog[msgid] in page
        assert msgid not in page
    wrong = client.post(
        "/till/sign-in",
        data={"username": "nobody-here", "password": "no", "csrf_token": csrf_token(client)},
    )
    assert wrong.status_code == 401
    page = visible_text(wrong)
    assert catalog["The username or the password is wrong."] in page
    assert "The username or the password is wrong." not in page


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("zh-CN,zh;q=0.9", "zh"),
        ("zh-Hans-CN", "zh"),
        ("ru-RU", "ru"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("ca-ES,ca;q=0.9,es;q=0.8", "ca"),
        ("de-DE,de;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,ca;q=0.5", "ca"),
        ("en-GB,en;q=0.9,ru;q=0.8", "en"),
        ("", "en"),
    ],
)
def test_the_browsers_best_match_is_chosen(client: FlaskClient, accept: str, lang: str):
    answer = client.get("/till/sign-in", headers={"Accept-Language": accept})
    assert html_lang(answer) == lang
    if lang != "en":
        assert translations(lang)[SIGN_IN] in visible_text(answer)
    else:
        assert SIGN_IN in visible_text(answer)


def test_the_cookie_wins_over_the_browser_and_an_unknown_cookie_is_ignored(client: FlaskClient):
    client.set_cookie(LANGUAGE_COOKIE, "ca")
    assert html_lang(client.get("/till/sign-in", headers={"Accept-Language": "zh-CN"})) == "ca"
    client.set_cookie(LANGUAGE_COOKIE, "xx")
    assert html_lang(client.get("/till/sign-in", headers={"Accept-Language": "zh-CN"})) == "zh"


# -- the switch -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_switch_sets_the_cookie_and_goes_back(client: FlaskClient, lang: str):
    answer = client.get(f"/language/{lang}", query_string={"next": "/till/sign-in?next=/till/"})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/sign-in?next=/till/"
    set_cookie = answer.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{LANGUAGE_COOKIE}={lang};")
    assert "SameSite=Lax" in set_cookie
    assert "Path=/" in set_cookie
    assert "Max-Age=31536000" in set_cookie
    page = client.get("/till/sign-in", headers={"Accept-Language": "de"})
    assert html_lang(page) == lang


def test_the_switch_without_next_goes_to_the_till(client: FlaskClient):
    answer = client.get("/language/ru")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "///evil.com",
        "////evil.com/till/",
        "/\\evil.com",
        "\\\\evil.com",
        "https://evil.com/till/",
        "http:evil.com",
        "javascript:alert(1)",
        "evil.com",
        "till/",
        "/till/\nSet-Cookie: x=1",
        "/till/\t",
        "",
    ],
)
def test_the_switch_never_leads_off_the_site(client: FlaskClient, target: str):
    answer = client.get("/language/zh", query_string={"next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/till/"
    assert local_path(target) == "/till/"


@pytest.mark.parametrize("code", ["xx", "de", "EN", "zh-CN", "zh_Hans", "ru-RU", "en%0d%0a"])
def test_an_unknown_language_is_not_found_and_sets_nothing(client: FlaskClient, code: str):
    answer = client.get(f"/language/{code}", query_string={"next": "/till/"})
    assert answer.status_code == 404
    assert "Set-Cookie" not in answer.headers or LANGUAGE_COOKIE not in answer.headers.get(
        "Set-Cookie", ""
    )
