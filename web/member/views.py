"""The member's pages under /me: ask for a code by email, type it, see one's own points, sign
out. There is no member id in any URL: /me/ shows the session's member and nobody else."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from loyalty.members.errors import UnknownMember
from loyalty.members.models import MemberStatus
from loyalty.members.sign_in import CodeRefused, request_code, verify_code
from loyalty.profiles.services import MemberProfile, profile
from server.core import context
from server.core.extensions import db
from web.extensions import csrf
from web.member import delivery, limits
from web.member import session as member_session
from web.member.forms import CodeForm, EmailForm

blp = Blueprint("member", __name__, url_prefix="/me")

Answer = str | Response | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]


@blp.record_once
def _setup(state: BlueprintSetupState) -> None:
    limits.init_budget(state.app)
    delivery.init_delivery(state.app)


@blp.before_request
def _before() -> None:
    if request.method == "POST":
        csrf.protect()  # 400 without a valid token, before anything is read or changed


@blp.context_processor
def _page_context() -> dict[str, object]:
    return {"signed_in": member_session.current() is not None}


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in_page() -> Answer:
    form = EmailForm()
    if request.method == "GET" or not form.validate():
        status = 200 if request.method == "GET" else 400
        return render_template("member/sign_in.html", form=form), status
    email = (form.email.data or "").strip().lower()
    keys = limits.request_keys(email, request.remote_addr)
    wait = limits.refused(keys) or limits.spend(keys)
    if wait is not None:
        return _wait_page(wait)
    settings = context.settings()
    request_code(db.session(), email=email, now=context.now(), secret=settings.secret_key)
    member_session.await_code(email)
    delivery.deliver_after_commit()
    return redirect(url_for("member.code_page"))


@blp.route("/code", methods=["GET", "POST"])
def code_page() -> Answer:
    email = member_session.awaited_email()
    if email is None:
        return redirect(url_for("member.sign_in_page"))
    form = CodeForm()
    if request.method == "GET" or not form.validate():
        status = 200 if request.method == "GET" else 400
        return render_template("member/code.html", form=form, email=email), status
    keys = limits.try_keys(email, request.remote_addr)
    wait = limits.refused(keys)
    if wait is not None:
        return _wait_page(wait)
    try:
        member_id = verify_code(
            db.session(),
            email=email,
            code=form.code.data or "",
            now=context.now(),
            secret=context.settings().secret_key,
        )
    except CodeRefused:
        # the wrong try counts against the code although the answer is an error (rolled back)
        db.session.commit()
        wait = limits.spend(keys)
        if wait is not None:
            return _wait_page(wait)
        error = _("This code is wrong or no longer valid. Check it, or ask for a new one.")
        return render_template("member/code.html", form=form, email=email, error=error), 401
    member_session.begin(member_id)
    return redirect(url_for("member.home"))


@blp.get("/")
def home() -> Answer:
    shown = _signed_in_member()
    if shown is None:
        member_session.end()
        return redirect(url_for("member.sign_in_page"))
    return render_template("member/home.html", member=shown)


@blp.post("/sign-out")
def sign_out() -> BaseResponse:
    member_session.end()
    return redirect(url_for("member.sign_in_page"))


def _signed_in_member() -> MemberProfile | None:
    """The session's member as of now, when still active (a blocked or erased member's session
    ends at their next page)."""
    member_id = member_session.current()
    if member_id is None:
        return None
    try:
        shown = profile(
            db.session(), member_id, card_key=context.settings().card_key, now=context.now()
        )
    except UnknownMember:
        return None
    return shown if shown.status == MemberStatus.ACTIVE else None


def _wait_page(seconds: float) -> tuple[str, int, dict[str, str]]:
    retry_after = str(int(seconds) + 1)
    page = render_template("member/wait.html", seconds=retry_after)
    return page, 429, {"Retry-After": retry_after}
