"""The till's pages under /till: sign in, sign out, and the start page."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from loyalty.staff.accounts import SignedIn, SignInRefused, normalised_username, sign_in
from loyalty.stores.models import Store
from server.core import context
from server.core.extensions import db
from web.extensions import csrf
from web.till import limits
from web.till import session as till_session
from web.till.forms import SignInForm

blp = Blueprint("till", __name__, url_prefix="/till")

Answer = str | Response | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]


@blp.before_request
def _before() -> None:
    if request.method == "POST":
        csrf.protect()  # 400 without a valid token, before anything is read or changed
    till_session.load()


@blp.context_processor
def _page_context() -> dict[str, object]:
    return {"lang": str(get_locale() or "en"), "signed_in": till_session.current() is not None}


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in_page() -> Answer:
    form = SignInForm()
    target = request.args.get("next")
    if request.method == "GET" or not form.validate():
        status = 200 if request.method == "GET" else 400
        return render_template("till/sign_in.html", form=form, next=target), status
    username = normalised_username(form.username.data or "")
    keys = limits.keys_for(username, request.remote_addr)
    wait = limits.refused(keys)
    if wait is not None:
        return _wait_page(wait)
    try:
        account = sign_in(db.session(), username, form.password.data or "", now=context.now())
    except SignInRefused:
        wait = limits.spend(keys)
        if wait is not None:
            return _wait_page(wait)
        error = _("The username or the password is wrong.")
        return render_template("till/sign_in.html", form=form, next=target, error=error), 401
    if not till_session.may_work_till(account, account.store_id):
        till_session.end()
        return _refused_page()
    till_session.begin(account)
    return redirect(till_session.safe_next(target))


@blp.post("/sign-out")
def sign_out() -> BaseResponse:
    till_session.end()
    return redirect(url_for("till.sign_in_page"))


@blp.get("/")
def start() -> Answer:
    account = till_session.current()
    if account is None:
        return redirect(url_for("till.sign_in_page", next=request.full_path.rstrip("?")))
    store_id = till_session.session_store_id()
    if not till_session.may_work_till(account, store_id):
        till_session.end()
        return _refused_page()
    return render_template("till/start.html", account=account, store=_store(account))


def _store(account: SignedIn) -> Store | None:
    return db.session.get(Store, account.store_id) if account.store_id is not None else None


def _refused_page() -> tuple[str, int]:
    return render_template("till/refused.html"), 403


def _wait_page(seconds: float) -> tuple[str, int, dict[str, str]]:
    retry_after = str(int(seconds) + 1)
    page = render_template("till/wait.html", seconds=retry_after)
    return page, 429, {"Retry-After": retry_after}
