"""The till's flow: price a basket, and commit a sale exactly once with its points and the tier
it reaches. It meets members, the ledger, rules, tiers and the sale record, so it sits above
them all; returns and voids are in returns.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty.checkout.identify import (
    CouponScan,
    Identification,
    identify_by_id,
    identify_or_coupon,
)
from loyalty.checkout.referrals import after_sale
from loyalty.checkout.results import (
    CouponOutcome,
    LineDiscount,
    PointsOutcome,
    Quote,
    SaleResult,
)
from loyalty.coupons.till import (
    Buyer,
    Checked,
    check_coupons,
    issue_next_visit,
    redeem_coupons,
    refuse_unapplied,
)
from loyalty.errors import DomainError, InvalidInput
from loyalty.idempotency import IdempotencyConflict, fingerprint
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind
from loyalty.program import ProgramSettings, get_program
from loyalty.results import Outcome, restored, stored
from loyalty.rules.engine import Award, EarnContext, Earned, RuleKind, applies, evaluate
from loyalty.rules.pricing import BasketLine, PricedBasket, default_rate, price_basket
from loyalty.rules.services import cap_period_starts, cap_used_subquery, live_rules, record_awards
from loyalty.sales import services as sales
from loyalty.sales.models import Sale, SaleStatus
from loyalty.settings import LookupKeys
from loyalty.stores.access import TillViewer
from loyalty.stores.models import TerminalLike
from loyalty.tiers.services import (
    TierStanding,
    counts_towards_tier,
    needs_qualifying,
    qualifying_subquery,
    upgrade_after_sale,
    window_start,
)

# A till's clock may run ahead; beyond this a sale "from the future" is a mistake, not skew.
MAX_CLOCK_SKEW = timedelta(hours=24)


@dataclass(frozen=True)
class Basket:
    lines: list[BasketLine]
    member_code: str | None = None
    member_id: int | None = None
    coupon_codes: list[str] = field(default_factory=list)
    redeem_points: int = 0


@dataclass(frozen=True)
class SaleRequest:
    external_id: str
    occurred_at: datetime
    basket: Basket
    # the POS's fingerprint of the payment card (a referral paid with the referrer's is refused)
    payment_fingerprint: str | None = None


def _resolve_member(
    session: Session, basket: Basket, keys: LookupKeys, now: datetime, viewer: TillViewer | None
) -> tuple[Identification | None, list[str]]:
    """The buyer, and the coupon codes: `code` may be a coupon's (its owner, if it has one,
    buys, and the coupon is added to the basket's codes)."""
    codes = list(basket.coupon_codes)
    if not basket.member_code:
        return _buyer_by_id(session, basket, now, viewer, codes)
    found = identify_or_coupon(session, basket.member_code, keys, now, viewer, with_wallet=False)
    if found.scanned_coupon is not None:
        codes.insert(0, found.scanned_coupon.code)
    if isinstance(found, CouponScan):
        return _buyer_by_id(session, basket, now, viewer, codes)
    return found, codes


def _buyer_by_id(
    session: Session,
    basket: Basket,
    now: datetime,
    viewer: TillViewer | None,
    codes: list[str],
) -> tuple[Identification | None, list[str]]:
    if basket.member_id is not None:
        return identify_by_id(session, basket.member_id, now, viewer), codes
    if basket.redeem_points:
        raise InvalidInput("points can only be redeemed by an identified member", field="code")
    return None, codes


def _coupon_outcomes(
    checked: Checked | None, checks: tuple[Any, ...] | None
) -> tuple[CouponOutcome, ...]:
    if checked is None:
        return ()
    return tuple(
        CouponOutcome(c.code, c.applied, c.reason, c.message, c.offer_id, c.amount, c.points)
        for c in (checks if checks is not None else checked.checks)
    )


@dataclass(frozen=True)
class _Earning:
    earned: Earned
    # the buyer's qualifying value before this sale; None when no tier could change
    qualifying: int | None
    coupon_points: dict[str, int] = field(default_factory=dict)
    coupon_checks: tuple[Any, ...] | None = None


def _with_coupon_points(earned: Earned, checked: Checked | None) -> _Earning:
    """The rules' points plus what the coupons add (extra points, a multiplier)."""
    if checked is None or not checked.applied:
        return _Earning(earned, None)
    extra, by_code, checks = checked.with_points(earned.points)
    awards = tuple(
        Award(None, f"coupon {code}", "coupon", points, f"coupon {code}")
        for code, points in by_code.items()
        if points
    )
    return _Earning(
        Earned(earned.points + extra, earned.awards + awards, earned.eligible_amount),
        None,
        by_code,
        checks,
    )


@lru_cache(maxsize=256)
def _member_facts(
    *, first_purchase: bool, caps: tuple[tuple[int, bool], ...], tier_basis: str | None
) -> Any:
    """One SELECT of the scalar subqueries a sale asks about its buyer, built once per shape:
    whether they have bought before, each capped rule's points in its period ((rule id, whether
    the cap has a period start) in `caps`), and their qualifying value for the next tier."""
    asked = []
    if first_purchase:
        any_sale = select(Sale.id).where(
            Sale.member_id == bindparam("member_id"), Sale.status != SaleStatus.VOIDED
        )
        asked.append((~any_sale.exists()).label("first_purchase"))
    asked += [
        cap_used_subquery(rule_id, since=since).label(f"cap_{rule_id}") for rule_id, since in caps
    ]
    if tier_basis is not None:
        asked.append(qualifying_subquery(tier_basis).label("qualifying"))
    return select(*asked)


def _earn(
    session: Session,
    *,
    program: ProgramSettings,
    priced: PricedBasket,
    buyer: Identification,
    store_code: str | None,
    occurred_at: datetime,
    now: datetime,
    for_sale: bool,
    checked: Checked | None,
) -> _Earning:
    """Points for this basket by the rules live when it happened. Rules come from the process's
    cache. What the rules that apply to this sale (its window, store and tier) need to know about
    the member (caps used, first purchase) and, for a sale, their qualifying value for the next
    tier are read in one statement, and only when something asks for them."""
    ctx = EarnContext(
        occurred_at=occurred_at,
        zone=program.zone,
        default_rate=default_rate(program),
        lines=priced.paid_lines,
        store_code=store_code,
        tier_code=buyer.tier.code if buyer.tier else None,
        tier_multiplier_percent=buyer.tier.earn_multiplier_percent if buyer.tier else 100,
        birthday=buyer.birthday,
    )
    rules = [rule for rule in live_rules(session, program.config_version) if applies(rule, ctx)]
    first_purchase = any(rule.kind == RuleKind.FIRST_PURCHASE for rule in rules)
    starts = cap_period_starts(rules, ctx.local)
    with_tiers = for_sale and needs_qualifying(session, program, buyer.held_tier_rank)
    facts: Any = {}
    if first_purchase or starts or with_tiers:
        statement = _member_facts(
            first_purchase=first_purchase,
            caps=tuple((rule_id, start is not None) for rule_id, start in starts.items()),
            tier_basis=program.tier_basis if with_tiers else None,
        )
        params: dict[str, Any] = {
            f"since_{rule_id}": start for rule_id, start in starts.items() if start
        }
        params |= {"member_id": buyer.member_id, "window_start": window_start(program, now)}
        facts = session.connection().execute(statement, params).mappings().one()
    ctx = replace(
        ctx,
        first_purchase=bool(facts.get("first_purchase", False)),
        cap_used={rule_id: int(facts[f"cap_{rule_id}"]) for rule_id in starts},
    )
    qualifying = facts.get("qualifying")
    earning = _with_coupon_points(evaluate(rules, ctx), checked)
    return replace(earning, qualifying=None if qualifying is None else int(qualifying))


@dataclass(frozen=True)
class _Prepared:
    program: ProgramSettings
    basket: Basket
    buyer: Identification | None
    priced: PricedBasket
    earned: Earned | None
    qualifying: int | None = None
    checked: Checked | None = None
    coupon_points: dict[str, int] = field(default_factory=dict)
    coupon_checks: tuple[Any, ...] | None = None

    def quote(self, balance: ledger.Balance | None, tier: Any) -> Quote:
        """The priced basket as the till is shown it, with the balance the sale leaves."""
        return Quote(**self._priced_fields(), balance=balance, tier=tier)

    def _priced_fields(self) -> dict[str, Any]:
        priced, earned = self.priced, self.earned
        return {
            "member_id": self.buyer.member_id if self.buyer else None,
            "currency": self.program.currency,
            "subtotal": priced.subtotal,
            "discounts": self._line_discounts(),
            "discount_total": priced.points_discount + priced.coupon_discount,
            "total": priced.total,
            "points": PointsOutcome(
                earned=earned.points if earned else 0,
                redeemed=priced.points_redeemed,
                reasons=earned.awards if earned else (),
            ),
            "coupons": _coupon_outcomes(self.checked, self.coupon_checks),
        }

    def _line_discounts(self) -> tuple[LineDiscount, ...]:
        """Each coupon's share of each line, then the points' share, lines counted from 1."""
        lines = self.basket.lines
        found = [
            LineDiscount(index, line.sku, "coupon", amount, coupon.code)
            for coupon in (self.checked.priced.coupons if self.checked else ())
            for index, (line, amount) in enumerate(
                zip(lines, coupon.line_discounts, strict=True), start=1
            )
            if amount
        ]
        shares = self.priced.points_shares or [0] * len(lines)
        found += [
            LineDiscount(index, line.sku, "points", share)
            for index, (line, share) in enumerate(zip(lines, shares, strict=True), start=1)
            if share
        ]
        return tuple(found)

    def sale_result(
        self,
        external_id: str,
        balance: ledger.Balance | None,
        standing: TierStanding | None,
        next_visit: tuple[str, ...] = (),
    ) -> SaleResult:
        return SaleResult(
            next_visit_coupons=next_visit,
            **self._priced_fields(),
            balance=balance,
            tier=standing.tier if standing else None,
            external_id=external_id,
            status=SaleStatus.COMPLETED,
            tier_changed=standing.changed if standing else False,
        )


def _prepare(
    session: Session,
    basket: Basket,
    keys: LookupKeys,
    *,
    store_code: str | None,
    occurred_at: datetime,
    now: datetime,
    for_sale: bool,
    viewer: TillViewer | None,
) -> _Prepared:
    """Who buys, what the basket costs (coupons, then points) and what it earns: the same for
    a quote and a sale."""
    program = get_program(session)
    buyer, codes = _resolve_member(session, basket, keys, now, viewer)
    checked = None
    if codes:
        checked = check_coupons(
            session,
            codes,
            lines=basket.lines,
            buyer=Buyer(
                buyer.member_id if buyer else None,
                buyer.tier.code if buyer and buyer.tier else None,
            ),
            store_code=store_code,
            now=occurred_at,
            zone=program.zone,
            per_basket=program.coupons_per_basket,
        )
        if for_sale:
            refuse_unapplied(checked)
    priced = price_basket(
        program,
        basket.lines,
        basket.redeem_points,
        checked.priced.line_discounts if checked else None,
    )
    if buyer is None:
        return _Prepared(program, basket, None, priced, None, checked=checked)
    earning = _earn(
        session,
        program=program,
        priced=priced,
        buyer=buyer,
        store_code=store_code,
        occurred_at=occurred_at,
        now=now,
        for_sale=for_sale,
        checked=checked,
    )
    return _Prepared(
        program,
        basket,
        buyer,
        priced,
        earning.earned,
        earning.qualifying,
        checked,
        earning.coupon_points,
        earning.coupon_checks,
    )


def quote(
    session: Session,
    basket: Basket,
    keys: LookupKeys,
    *,
    store_code: str | None,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Quote:
    """What the sale would do, changing nothing. A till (`viewer`) names a member by id only
    if it may see them (loyalty.stores.access)."""
    prepared = _prepare(
        session,
        basket,
        keys,
        store_code=store_code,
        occurred_at=now,
        now=now,
        for_sale=False,
        viewer=viewer,
    )
    buyer, priced, earned = prepared.buyer, prepared.priced, prepared.earned
    if buyer is None or earned is None:
        return prepared.quote(None, None)
    available = buyer.balance.available
    if priced.points_redeemed > available:
        raise InvalidInput(
            f"the member has {available} points available, not {priced.points_redeemed}",
            field="redeem_points",
        )
    after = ledger.Balance(
        available=available - priced.points_redeemed + earned.points,
        pending=buyer.balance.pending,
    )
    if prepared.program.pending_days > 0 and earned.points:
        # points a sale earns wait as pending (a quote is a sale made now)
        after = ledger.Balance(after.available - earned.points, after.pending + earned.points)
    return prepared.quote(after, buyer.tier)


def _replay(sale: Sale, request_hash: str) -> Outcome[SaleResult]:
    if sale.request_hash != request_hash:
        raise IdempotencyConflict("sale", sale.external_id)
    return Outcome(restored(sale.result, SaleResult), created=False)


def _replay_of(
    session: Session, terminal: TerminalLike, request: SaleRequest, request_hash: str
) -> Outcome[SaleResult] | None:
    existing = sales.store_sale(session, terminal.store_id, request.external_id)
    return None if existing is None else _replay(existing, request_hash)


def _post_points(
    session: Session,
    prepared: _Prepared,
    *,
    sale_id: int,
    terminal: TerminalLike,
    request: SaleRequest,
    now: datetime,
) -> ledger.Balance:
    """Redeem, then earn, for the identified buyer; the balance as the member now sees it."""
    buyer, priced, earned = prepared.buyer, prepared.priced, prepared.earned
    if buyer is None or earned is None:  # pragma: no cover - the caller asks for a buyer
        raise RuntimeError("points are posted for an identified buyer only")
    reason = f"sale {request.external_id}"
    balance = buyer.balance
    if priced.points_redeemed:
        balance = ledger.redeem(
            session,
            member_id=buyer.member_id,
            points=priced.points_redeemed,
            reason=reason,
            actor=terminal.actor,
            now=now,
            sale_id=sale_id,
        ).balance
    if earned.points:
        balance = ledger.credit(
            session,
            program=prepared.program,
            member_id=buyer.member_id,
            points=earned.points,
            kind=EntryKind.EARN,
            reason=reason,
            actor=terminal.actor,
            now=now,
            sale_id=sale_id,
            earned_at=request.occurred_at,
        ).balance
        if not priced.points_redeemed:
            # a redemption unlocks matured points; without one they are still locked
            balance = ledger.as_of(balance.available, balance.pending, buyer.matured)
        record_awards(
            session,
            member_id=buyer.member_id,
            sale_id=sale_id,
            awards=earned.awards,
            awarded_at=request.occurred_at,
        )
    return balance


def _standing_after(
    session: Session, prepared: _Prepared, *, kept_total: int, request: SaleRequest, now: datetime
) -> TierStanding:
    """The buyer's tier once this sale counts: up if it crossed a threshold."""
    buyer, program = prepared.buyer, prepared.program
    if buyer is None:  # pragma: no cover - the caller asks for a buyer
        raise RuntimeError("a tier is reached by an identified buyer only")
    if prepared.qualifying is None:
        return TierStanding(buyer.tier, changed=False)
    points = prepared.earned.points if prepared.earned else 0
    return upgrade_after_sale(
        session,
        buyer.member_id,
        program,
        now,
        qualifying=prepared.qualifying
        + counts_towards_tier(
            program,
            occurred_at=request.occurred_at,
            kept_total=kept_total,
            points=points,
            now=now,
        ),
        held_rank=buyer.held_tier_rank,
        current=buyer.tier,
    )


def record_sale(
    session: Session,
    *,
    terminal: TerminalLike,
    request: SaleRequest,
    keys: LookupKeys,
    now: datetime,
    viewer: TillViewer | None = None,
) -> Outcome[SaleResult]:
    request_hash = fingerprint(request)
    basket = request.basket
    session.flush()  # the writes below go through the connection, past the ORM's autoflush
    try:
        if request.occurred_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput("the sale is dated in the future", field="occurred_at")
        prepared = _prepare(
            session,
            basket,
            keys,
            store_code=terminal.store_code,
            occurred_at=request.occurred_at,
            now=now,
            for_sale=True,
            viewer=viewer,
        )
    except DomainError:
        # A replay answers with the first result even if the card was blocked since.
        replay = _replay_of(session, terminal, request, request_hash)
        if replay is not None:
            return replay
        raise
    program, buyer, priced, earned = (
        prepared.program,
        prepared.buyer,
        prepared.priced,
        prepared.earned,
    )
    line_discounts = list(zip(basket.lines, priced.line_discounts, strict=True))
    kept_total = sum(line.amount - share for line, share in line_discounts)
    sale_id = sales.insert_once(
        session,
        {
            "store_id": terminal.store_id,
            "terminal_id": terminal.id,
            "external_id": request.external_id,
            "request_hash": request_hash,
            "member_id": buyer.member_id if buyer else None,
            "card_id": buyer.card_id if buyer else None,
            "occurred_at": request.occurred_at,
            "recorded_at": now,
            "currency": program.currency,
            "subtotal": priced.subtotal,
            "discount_total": priced.points_discount + priced.coupon_discount,
            "total": priced.total,
            "kept_total": kept_total,
            "points_earned": earned.points if earned else 0,
            "points_redeemed": priced.points_redeemed,
            "points_reversed": 0,
            "status": SaleStatus.COMPLETED,
            "result": {},
        },
    )
    if sale_id is None:
        replay = _replay_of(session, terminal, request, request_hash)
        if replay is None:  # pragma: no cover - the conflicting row is committed by now
            raise RuntimeError("a sale conflicted but cannot be read back")
        return replay
    sales.insert_lines(
        session,
        [
            {
                "sale_id": sale_id,
                "line_no": index,
                "sku": line.sku,
                "category": line.category,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "amount": line.amount,
                "discount": share,
                "returned_quantity": 0,
            }
            for index, (line, share) in enumerate(line_discounts, start=1)
        ],
    )
    if prepared.checked is not None and prepared.checked.applied:
        redeem_coupons(
            session,
            prepared.checked.applied,
            points_by_code=prepared.coupon_points,
            sale_id=sale_id,
            member_id=buyer.member_id if buyer else None,
            now=now,
            zone=program.zone,
        )
    balance, standing, next_visit = None, None, []
    if buyer is not None and earned is not None:
        balance = _post_points(
            session, prepared, sale_id=sale_id, terminal=terminal, request=request, now=now
        )
        standing = _standing_after(
            session, prepared, kept_total=kept_total, request=request, now=now
        )
        if buyer.pending_referral or request.payment_fingerprint:
            after_sale(
                session,
                program,
                member_id=buyer.member_id,
                sale_id=sale_id,
                kept_total=kept_total,
                occurred_at=request.occurred_at,
                payment_fingerprint=request.payment_fingerprint,
                actor=terminal.actor,
                now=now,
            )
        next_visit = issue_next_visit(
            session,
            config_version=program.config_version,
            sale_id=sale_id,
            member_id=buyer.member_id,
            paid=kept_total,
            store_code=terminal.store_code,
            occurred_at=request.occurred_at,
            now=now,
            zone=program.zone,
        )
    result = prepared.sale_result(request.external_id, balance, standing, tuple(next_visit))
    sales.save_result(session, sale_id, stored(result))
    return Outcome(result, created=True)
