"""Quote, record, return and void sales. Each is exactly-once by its external id."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from loyalty.db import UPSERT_INSERT
from loyalty.errors import DomainError, InvalidInput
from loyalty.idempotency import CLIENT_ID, IdempotencyConflict, fingerprint
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind, PointEntry
from loyalty.members.services import Identification, LookupKeys, identify, identify_by_id
from loyalty.program import ProgramSettings, get_program
from loyalty.rules.engine import EarnContext, Earned, RuleKind, applies, evaluate
from loyalty.rules.pricing import (
    BasketLine,
    PricedBasket,
    default_rate,
    points_kept_after_returns,
    price_basket,
)
from loyalty.rules.services import (
    cap_period_starts,
    cap_used_subquery,
    live_rules,
    record_awards,
    withdraw_awards,
)
from loyalty.sales.errors import SaleClosed, UnknownSale
from loyalty.sales.models import Sale, SaleLine, SaleReturn, SaleStatus
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


@dataclass(frozen=True)
class ReturnRequest:
    external_id: str
    lines: list[tuple[str, int]]  # (sku, quantity)


@dataclass(frozen=True)
class Recorded:
    """`created` is False when the request replayed one already recorded."""

    created: bool
    result: dict[str, Any]


def _resolve_member(
    session: Session, basket: Basket, keys: LookupKeys, now: datetime
) -> Identification | None:
    if basket.member_code:
        return identify(session, basket.member_code, keys, now)
    if basket.member_id is not None:
        return identify_by_id(session, basket.member_id, now)
    if basket.redeem_points:
        raise InvalidInput("points can only be redeemed by an identified member", field="code")
    return None


def _coupon_outcomes(codes: list[str]) -> list[dict[str, Any]]:
    # Coupons arrive with their own module; until then no code matches one.
    return [{"code": code, "applied": False, "reason": "no such coupon"} for code in codes]


@dataclass(frozen=True)
class _Earning:
    earned: Earned
    # the buyer's qualifying value before this sale; None when no tier could change
    qualifying: int | None


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
    return _Earning(evaluate(rules, ctx), None if qualifying is None else int(qualifying))


def _priced_summary(
    program: ProgramSettings,
    basket: Basket,
    priced: PricedBasket,
    buyer: Identification | None,
    earned: Earned | None,
) -> dict[str, Any]:
    return {
        "member_id": buyer.member_id if buyer else None,
        "currency": program.currency,
        "subtotal": priced.subtotal,
        "discounts": [
            {"line": index, "sku": line.sku, "kind": "points", "amount": share}
            for index, (line, share) in enumerate(
                zip(basket.lines, priced.line_discounts, strict=True), start=1
            )
            if share
        ],
        "discount_total": priced.points_discount,
        "total": priced.total,
        "points": {
            "earned": earned.points if earned else 0,
            "redeemed": priced.points_redeemed,
            "reasons": [
                {
                    "rule": a.rule,
                    "rule_id": a.rule_id,
                    "kind": a.kind,
                    "points": a.points,
                    "description": a.description,
                }
                for a in (earned.awards if earned else ())
            ],
        },
        "coupons": _coupon_outcomes(basket.coupon_codes),
    }


@dataclass(frozen=True)
class _Prepared:
    program: ProgramSettings
    buyer: Identification | None
    priced: PricedBasket
    earned: Earned | None
    qualifying: int | None = None


def _prepare(
    session: Session,
    basket: Basket,
    keys: LookupKeys,
    *,
    store_code: str | None,
    occurred_at: datetime,
    now: datetime,
    for_sale: bool,
) -> _Prepared:
    """Who buys, what the basket costs and what it earns: the same for a quote and a sale."""
    program = get_program(session)
    buyer = _resolve_member(session, basket, keys, now)
    priced = price_basket(program, basket.lines, basket.redeem_points)
    if buyer is None:
        return _Prepared(program, None, priced, None)
    earning = _earn(
        session,
        program=program,
        priced=priced,
        buyer=buyer,
        store_code=store_code,
        occurred_at=occurred_at,
        now=now,
        for_sale=for_sale,
    )
    return _Prepared(program, buyer, priced, earning.earned, earning.qualifying)


def quote(
    session: Session, basket: Basket, keys: LookupKeys, *, store_code: str | None, now: datetime
) -> dict[str, Any]:
    """What the sale would do, changing nothing."""
    prepared = _prepare(
        session, basket, keys, store_code=store_code, occurred_at=now, now=now, for_sale=False
    )
    program, buyer, priced, earned = (
        prepared.program,
        prepared.buyer,
        prepared.priced,
        prepared.earned,
    )
    summary = _priced_summary(program, basket, priced, buyer, earned)
    if buyer is not None and earned is not None:
        available = buyer.balance.available
        if priced.points_redeemed > available:
            raise InvalidInput(
                f"the member has {available} points available, not {priced.points_redeemed}",
                field="redeem_points",
            )
        summary["balance_after"] = available - priced.points_redeemed + earned.points
        summary["tier"] = buyer.tier.as_dict() if buyer.tier else None
    return summary


def _store_sale(session: Session, store_id: int, external_id: str) -> Sale | None:
    return session.scalars(
        select(Sale).where(Sale.store_id == store_id, Sale.external_id == external_id)
    ).first()


def _replay(sale: Sale, request_hash: str) -> Recorded:
    if sale.request_hash != request_hash:
        raise IdempotencyConflict("sale", sale.external_id)
    return Recorded(created=False, result=sale.result)


def _replay_of(
    session: Session, terminal: TerminalLike, request: SaleRequest, request_hash: str
) -> Recorded | None:
    existing = _store_sale(session, terminal.store_id, request.external_id)
    return None if existing is None else _replay(existing, request_hash)


_sales = cast("Table", Sale.__table__)
_INSERT_SALE_ONCE = {
    name: dialect_insert(_sales)
    .on_conflict_do_nothing(index_elements=["store_id", "external_id"])
    .returning(_sales.c.id)
    for name, dialect_insert in UPSERT_INSERT.items()
}
_INSERT_LINES = insert(cast("Table", SaleLine.__table__))
_SAVE_RESULT = update(_sales).where(_sales.c.id == bindparam("sale_id"))


def _insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert the sale unless its (store, external_id) exists: the id, or None for a replay.

    ON CONFLICT DO NOTHING makes exactly-once one statement: on PostgreSQL a racing insert of
    the same id waits for the first to commit and then inserts nothing; SQLite's write lock
    serialises the two.
    """
    connection = session.connection()
    statement = _INSERT_SALE_ONCE[connection.dialect.name]
    sale_id = connection.execute(statement, values).scalar_one_or_none()
    return None if sale_id is None else int(sale_id)


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


def record_sale(
    session: Session,
    *,
    terminal: TerminalLike,
    request: SaleRequest,
    keys: LookupKeys,
    now: datetime,
) -> Recorded:
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
    points = earned.points if earned else 0
    line_discounts = list(zip(basket.lines, priced.line_discounts, strict=True))
    kept_total = sum(line.amount - share for line, share in line_discounts)
    sale_id = _insert_once(
        session,
        {
            "store_id": terminal.store_id,
            "terminal_id": terminal.id,
            "external_id": request.external_id,
            "request_hash": request_hash,
            "member_id": buyer.member_id if buyer else None,
            "card_id": buyer.card.id if buyer and buyer.card else None,
            "occurred_at": request.occurred_at,
            "recorded_at": now,
            "currency": program.currency,
            "subtotal": priced.subtotal,
            "discount_total": priced.points_discount,
            "total": priced.total,
            "kept_total": kept_total,
            "points_earned": points,
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
    session.connection().execute(
        _INSERT_LINES,
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
    result = _priced_summary(program, basket, priced, buyer, earned)
    result |= {"external_id": request.external_id, "status": SaleStatus.COMPLETED}
    result |= {"balance": None, "tier": None, "tier_changed": False}
    if buyer is not None and earned is not None:
        balance = _post_points(
            session,
            prepared,
            sale_id=sale_id,
            terminal=terminal,
            request=request,
            now=now,
        )
        standing = TierStanding(buyer.tier, changed=False)
        if prepared.qualifying is not None:
            standing = upgrade_after_sale(
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
        result |= {
            "balance": asdict(balance),
            "tier": standing.tier.as_dict() if standing.tier else None,
            "tier_changed": standing.changed,
        }
    session.connection().execute(_SAVE_RESULT, {"sale_id": sale_id, "result": result})
    return Recorded(created=True, result=result)


def _locked_sale(session: Session, terminal: TerminalLike, external_id: str) -> Sale:
    """The sale, locked against a concurrent return or void of the same sale (PostgreSQL; on
    SQLite the write transaction already excludes them). Another store's sales do not exist
    for this terminal."""
    if not CLIENT_ID.match(external_id):
        raise UnknownSale(external_id)  # no sale can have such an id; spare the database
    sale = session.scalars(
        select(Sale)
        .where(Sale.store_id == terminal.store_id, Sale.external_id == external_id)
        .with_for_update()
    ).first()
    if sale is None:
        raise UnknownSale(external_id)
    return sale


def _redemption_of(session: Session, sale: Sale) -> int | None:
    return session.scalars(
        select(PointEntry.id).where(
            PointEntry.sale_id == sale.id, PointEntry.kind == EntryKind.REDEEM
        )
    ).first()


def _paid_still_kept(sale: Sale) -> int:
    return sum(
        (line.amount - line.discount) * (line.quantity - line.returned_quantity) // line.quantity
        for line in sale.lines
    )


def _take_back_points(
    session: Session, sale: Sale, *, everything: bool, reason: str, actor: str, now: datetime
) -> tuple[int, int]:
    """Reverse the earned points that the goods still kept no longer justify, and on a full
    return give back redeemed points. Returns (reversed, restored)."""
    if everything:
        keep = 0
    else:
        keep = points_kept_after_returns(sale.points_earned, sale.total, _paid_still_kept(sale))
    to_reverse = sale.points_earned - sale.points_reversed - keep
    restored = 0
    if sale.member_id is not None:
        if to_reverse > 0:
            ledger.reverse_earning(
                session,
                member_id=sale.member_id,
                points=to_reverse,
                sale_id=sale.id,
                reason=reason,
                actor=actor,
                now=now,
            )
        if everything:
            withdraw_awards(session, sale.id)
        redemption = _redemption_of(session, sale) if everything else None
        if redemption is not None:
            ledger.reverse_redemption(
                session, redemption_id=redemption, reason=reason, actor=actor, now=now
            )
            restored = sale.points_redeemed
    sale.points_reversed += max(to_reverse, 0)
    return max(to_reverse, 0), restored


def _refuse_closed(sale: Sale) -> None:
    if sale.status == SaleStatus.RETURNED:
        raise SaleClosed(f"sale {sale.external_id!r} has been returned in full already")
    if sale.status == SaleStatus.VOIDED:
        raise SaleClosed(f"sale {sale.external_id!r} has been voided")


def _mark_returned(sale: Sale, lines: list[tuple[str, int]]) -> None:
    for sku, quantity in lines:
        left = quantity
        for line in sale.lines:
            if line.sku != sku or left == 0:
                continue
            taken = min(line.quantity - line.returned_quantity, left)
            line.returned_quantity += taken
            left -= taken
        if left:
            sold = sum(line.quantity for line in sale.lines if line.sku == sku)
            if not sold:
                raise InvalidInput(f"sku {sku!r} is not in this sale", field="lines")
            raise InvalidInput(
                f"cannot return {quantity} of sku {sku!r}: {sold} sold, "
                f"{sold - (quantity - left)} returned already",
                field="lines",
            )


def _balance_or_none(session: Session, sale: Sale, now: datetime) -> dict[str, int] | None:
    if sale.member_id is None:
        return None
    return asdict(ledger.balance_as_of(session, sale.member_id, now))


def record_return(
    session: Session,
    *,
    terminal: TerminalLike,
    sale_external_id: str,
    request: ReturnRequest,
    now: datetime,
) -> Recorded:
    request_hash = fingerprint(request)
    sale = _locked_sale(session, terminal, sale_external_id)
    existing = session.scalars(
        select(SaleReturn).where(
            SaleReturn.sale_id == sale.id, SaleReturn.external_id == request.external_id
        )
    ).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyConflict("return", request.external_id)
        return Recorded(created=False, result=existing.result)
    _refuse_closed(sale)
    _mark_returned(sale, request.lines)
    sale.kept_total = _paid_still_kept(sale)
    everything = all(line.returned_quantity == line.quantity for line in sale.lines)
    reversed_points, restored = _take_back_points(
        session,
        sale,
        everything=everything,
        reason=f"return {request.external_id} of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.RETURNED if everything else SaleStatus.PARTIALLY_RETURNED
    result = {
        "external_id": request.external_id,
        "sale_external_id": sale.external_id,
        "sale_status": sale.status,
        "points_reversed": reversed_points,
        "points_restored": restored,
        "balance": _balance_or_none(session, sale, now),
    }
    session.add(
        SaleReturn(
            sale_id=sale.id,
            terminal_id=terminal.id,
            external_id=request.external_id,
            request_hash=request_hash,
            points_reversed=reversed_points,
            points_restored=restored,
            result=result,
            created_at=now,
        )
    )
    return Recorded(created=True, result=result)


def void_sale(
    session: Session, *, terminal: TerminalLike, sale_external_id: str, now: datetime
) -> Recorded:
    sale = _locked_sale(session, terminal, sale_external_id)
    if sale.status == SaleStatus.VOIDED and sale.void_result is not None:
        return Recorded(created=False, result=sale.void_result)
    _refuse_closed(sale)
    reversed_points, restored = _take_back_points(
        session,
        sale,
        everything=True,
        reason=f"void of sale {sale.external_id}",
        actor=terminal.actor,
        now=now,
    )
    sale.status = SaleStatus.VOIDED
    result = {
        "sale_external_id": sale.external_id,
        "sale_status": sale.status,
        "points_reversed": reversed_points,
        "points_restored": restored,
        "balance": _balance_or_none(session, sale, now),
    }
    sale.void_result = result
    return Recorded(created=True, result=result)
