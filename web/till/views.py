"""The till's pages under /till: sign in and out, then the till itself: scan a member, ring up
the basket (priced on every page), commit the sale and show its receipt, void a sale.

A change to the basket answers a redirect to the till (so a reload does not repeat it); a
sale, a void and any refusal are answered with the page itself."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from loyalty.checkout.identify import CouponScan, Identification
from loyalty.checkout.results import Quote, SaleResult, VoidResult
from loyalty.errors import DomainError
from loyalty.rules.pricing import BasketLine
from loyalty.staff.accounts import SignedIn, SignInRefused, normalised_username, sign_in
from loyalty.stores.models import Store
from server.core import context
from server.core.extensions import db
from web.extensions import csrf
from web.till import basket, checkout, limits
from web.till import session as till_session
from web.till.basket import TillSale
from web.till.display import money
from web.till.forms import CouponForm, LineForm, RedeemForm, ScanForm, SignInForm, VoidForm
from web.till.messages import Problem, problem_of

blp = Blueprint("till", __name__, url_prefix="/till")

Answer = str | Response | BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]


_OPEN = frozenset({"till.sign_in_page", "till.sign_out"})


@blp.before_request
def _before() -> Answer | None:
    if request.method == "POST":
        csrf.protect()  # 400 without a valid token, before anything is read or changed
    till_session.load()
    if request.endpoint in _OPEN:
        return None
    return _working_till()


def _working_till() -> Answer | None:
    """Every page but signing in and out: a signed-in account at a till of the session's
    store, which `g.till_store` then names (a cashier of one store never acts on another)."""
    account = till_session.current()
    if account is None:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("till.sign_in_page", next=target))
    store_id = till_session.session_store_id()
    store = _store(account)
    if store is None or not till_session.may_work_till(account, store_id) or store.id != store_id:
        till_session.end()
        return _refused_page()
    g.till_store = store
    return None


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


def _store(account: SignedIn) -> Store | None:
    return db.session.get(Store, account.store_id) if account.store_id is not None else None


def _refused_page() -> tuple[str, int]:
    return render_template("till/refused.html"), 403


def _wait_page(seconds: float) -> tuple[str, int, dict[str, str]]:
    retry_after = str(int(seconds) + 1)
    page = render_template("till/wait.html", seconds=retry_after)
    return page, 429, {"Retry-After": retry_after}


# The till itself. Every view below runs after `_working_till`: `g.till_store` is the session's
# store and `till_session.current()` its signed-in account.


@dataclass(frozen=True)
class _Shown:
    """What the till page shows besides the sale in the session."""

    problem: Problem | None = None
    receipt: Receipt | None = None
    voided: VoidResult | None = None


@dataclass(frozen=True)
class Receipt:
    lines: tuple[BasketLine, ...]
    result: SaleResult


@dataclass
class _Forms:
    scan: ScanForm = field(default_factory=ScanForm)
    line: LineForm = field(default_factory=LineForm)
    coupon: CouponForm = field(default_factory=CouponForm)
    redeem: RedeemForm = field(default_factory=RedeemForm)
    void: VoidForm = field(default_factory=VoidForm)


def _account() -> SignedIn:
    account = till_session.current()
    assert account is not None  # checked by _working_till
    return account


def _till() -> checkout.WebTill:
    store: Store = g.till_store
    return checkout.web_till(store, _account())


def _member(till: checkout.WebTill, sale: TillSale) -> Identification | CouponScan | Problem | None:
    if sale.code is None:
        return None
    try:
        return checkout.scan(till, sale.code)
    except DomainError as exc:
        return problem_of(exc)


def _quote(till: checkout.WebTill, sale: TillSale) -> Quote | Problem | None:
    if sale.empty:
        return None
    try:
        return checkout.price(till, sale)
    except DomainError as exc:
        return problem_of(exc)


def _page(
    shown: _Shown | None = None, forms: _Forms | None = None, status: int = 200
) -> tuple[str, int]:
    till, sale = _till(), basket.current()
    shown = shown or _Shown()
    forms = forms or _Forms()
    page = render_template(
        "till/start.html",
        account=_account(),
        store=g.till_store,
        sale=sale,
        member=_member(till, sale),
        quote=_quote(till, sale),
        shown=shown,
        forms=forms,
        currency=checkout.currency(),
        money=money,
        focus=_focus(forms),
    )
    return page, status


_FOCUSABLE = ("scan", "line", "coupon", "redeem", "void")


def _focus(forms: _Forms) -> str:
    """The form whose first field has the focus: the one refused, else the one asked for after
    a change (adding lines one after the other), else the scan field."""
    refused = next((name for name in _FOCUSABLE if getattr(forms, name).errors), None)
    asked = request.args.get("focus")
    return refused or (asked if asked in _FOCUSABLE else "scan")


def _again(focus: str | None = None) -> BaseResponse:
    return redirect(url_for("till.start", focus=focus), code=303)


def _refusal(exc: DomainError, forms: _Forms | None = None) -> tuple[str, int]:
    found = problem_of(exc)
    return _page(_Shown(problem=found), forms, found.status)


@blp.get("/")
def start() -> Answer:
    return _page()


@blp.post("/scan")
def scan() -> Answer:
    forms = _Forms()
    if not forms.scan.validate():
        return _page(forms=forms, status=400)
    code = (forms.scan.code.data or "").strip()
    account = _account()
    wait = limits.lookup_refused(account.account_id, code)
    if wait is not None:
        return _lookup_wait_page(wait)
    try:
        found = checkout.scan(_till(), code)
    except DomainError as exc:
        if limits.is_failed_lookup(exc):
            wait = limits.spend_lookup(account.account_id)
            if wait is not None:
                return _lookup_wait_page(wait)
        return _refusal(exc, forms)
    basket.save(basket.scanned(basket.current(), found, code))
    return _again()


@blp.post("/lines")
def add_line() -> Answer:
    forms = _Forms()
    if not forms.line.validate():
        return _page(forms=forms, status=400)
    line = BasketLine(
        (forms.line.sku.data or "").strip(),
        int(forms.line.quantity.data or 0),
        int(forms.line.unit_price.data or 0),
    )
    basket.save(basket.with_line(basket.current(), line))
    return _again("line")


@blp.post("/lines/<int:index>/remove")
def remove_line(index: int) -> Answer:
    basket.save(basket.without_line(basket.current(), index))
    return _again()


@blp.post("/coupons")
def add_coupon() -> Answer:
    forms = _Forms()
    if not forms.coupon.validate():
        return _page(forms=forms, status=400)
    code = (forms.coupon.coupon_code.data or "").strip()
    account = _account()
    wait = limits.lookup_refused(account.account_id, code)
    if wait is not None:
        return _lookup_wait_page(wait)
    sale = basket.current()
    tried = basket.with_coupon(sale, code)
    try:
        priced = checkout.price(_till(), tried)
    except DomainError as exc:
        return _refusal(exc, forms)
    unknown = [c for c in priced.coupons if c.reason == "unknown"]
    if unknown:
        wait = limits.spend_lookup(account.account_id, priced.member_id, len(unknown))
        if wait is not None:
            return _lookup_wait_page(wait)
        message = unknown[0].message or _("no coupon has this code")
        problem = Problem(_("Unknown coupon"), message, 404)
        return _page(_Shown(problem=problem), forms, 404)
    basket.save(tried)
    return _again("coupon")


@blp.post("/coupons/<int:index>/remove")
def remove_coupon(index: int) -> Answer:
    basket.save(basket.without_coupon(basket.current(), index))
    return _again()


@blp.post("/redeem")
def redeem() -> Answer:
    forms = _Forms()
    if not forms.redeem.validate():
        return _page(forms=forms, status=400)
    basket.save(replace(basket.current(), redeem_points=int(forms.redeem.points.data or 0)))
    return _again()


@blp.post("/clear")
def clear() -> Answer:
    basket.clear()
    return _again()


@blp.post("/sale")
def commit_sale() -> Answer:
    sale = basket.current()
    if sale.empty:
        problem = Problem(_("Nothing to sell"), _("Add a line to the basket first."), 400)
        return _page(_Shown(problem=problem), status=400)
    try:
        recorded = checkout.commit(_till(), sale)
    except DomainError as exc:
        return _refusal(exc)
    basket.clear()
    return _page(_Shown(receipt=Receipt(sale.lines, recorded.result)))


@blp.post("/void")
def void() -> Answer:
    forms = _Forms()
    if not forms.void.validate():
        return _page(forms=forms, status=400)
    try:
        recorded = checkout.void(_till(), (forms.void.receipt.data or "").strip())
    except DomainError as exc:
        return _refusal(exc, forms)
    return _page(_Shown(voided=recorded.result))


def _lookup_wait_page(seconds: float) -> tuple[str, int, dict[str, str]]:
    retry_after = str(int(seconds) + 1)
    page = render_template("till/lookup_wait.html", seconds=retry_after)
    return page, 429, {"Retry-After": retry_after}
