"""What the till's pages ask of the checkout, for the signed-in account's store only.

Sales need a terminal (sales.terminal_id). The pages record theirs under one terminal per
store named "Web till", made on first use by loyalty.stores.services.create_terminal (audited
there) and revoked at once, as the batch import's terminal is: its key is never shown, so no
till can call the API with it. The ledger and the audit log name the staff account, not the
terminal, as who made each sale and void."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from loyalty.checkout.identify import CouponScan, Identification, identify_or_coupon
from loyalty.checkout.results import Quote, SaleResult, VoidResult
from loyalty.checkout.returns import void_sale
from loyalty.checkout.services import SaleRequest, quote, record_sale
from loyalty.members.services import enrolled_store_of
from loyalty.program import get_program
from loyalty.results import Outcome
from loyalty.staff.accounts import SignedIn
from loyalty.stores.access import TillViewer
from loyalty.stores.models import Store, Terminal
from loyalty.stores.services import create_terminal, revoke_terminal
from server.core import context
from server.core.shared import Sightings
from web.till.basket import TillSale

WEB_TILL_NAME = "Web till"


@dataclass(frozen=True)
class WebTill:
    """The store's web till as the checkout needs it, acting for the signed-in account."""

    id: int
    store_id: int
    store_code: str
    actor: str


def _web_terminal(store: Store, account: SignedIn) -> Terminal:
    session, now = context.session(), context.now()
    terminal = session.scalars(
        select(Terminal)
        .where(Terminal.store_id == store.id, Terminal.name == WEB_TILL_NAME)
        .order_by(Terminal.id)
    ).first()
    if terminal is None:
        terminal, _key = create_terminal(
            session, store=store, name=WEB_TILL_NAME, actor=account.actor, now=now
        )
        revoke_terminal(session, terminal=terminal, actor=account.actor, now=now)
    return terminal


def web_till(store: Store, account: SignedIn) -> WebTill:
    terminal = _web_terminal(store, account)
    return WebTill(terminal.id, store.id, store.code, account.actor)


def viewer(till: WebTill) -> TillViewer:
    """Members this web till may read, as server.core.auth.viewer() builds it for a terminal."""
    sightings: Sightings = current_app.extensions["loyalty.sightings"]
    return TillViewer(
        store_id=till.store_id,
        identified=functools.partial(sightings.seen, till.id),
        remember=functools.partial(sightings.remember, till.id),
        enrolled_store_of=functools.partial(enrolled_store_of, context.session()),
    )


def currency() -> str:
    return get_program(context.session()).currency


def scan(till: WebTill, code: str) -> Identification | CouponScan:
    return identify_or_coupon(
        context.session(), code, context.lookup_keys(), context.now(), viewer(till)
    )


def price(till: WebTill, sale: TillSale) -> Quote:
    return quote(
        context.session(),
        sale.basket(),
        context.lookup_keys(),
        store_code=till.store_code,
        now=context.now(),
        viewer=viewer(till),
    )


def commit(till: WebTill, sale: TillSale) -> Outcome[SaleResult]:
    now = context.now()
    request = SaleRequest(external_id=sale.external_id, occurred_at=now, basket=sale.basket())
    return record_sale(
        context.session(),
        terminal=till,
        request=request,
        keys=context.lookup_keys(),
        now=now,
        viewer=viewer(till),
    )


def void(till: WebTill, external_id: str) -> Outcome[VoidResult]:
    return void_sale(
        context.session(), terminal=till, sale_external_id=external_id, now=context.now()
    )
