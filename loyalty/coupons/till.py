"""Coupons at the till: which of the codes a basket carries apply (and if not, why), what they
take off line by line, redeeming them with the sale exactly once, giving them back on a full
return or a void, and "next visit" coupons issued at a qualifying sale.

Checks, per code in the order the till sent them (the first that fails is the reason):
unknown (no such code, cancelled, or its offer archived), not_this_member, not_started, expired,
not_in_store, tier, min_basket (the subtotal before any discount), used_up (the coupon's uses or
the offer's total), budget_exhausted, member_limit, not_combinable (the same code or offer
twice, more than the program's coupons per basket, an exclusive offer with another, or an offer
not in the other's `combinable_with`). Then the discounts are priced (loyalty.coupons.discounts)
and a coupon whose discount (or extra points) is more than its offer's budget has left is
refused with budget_exhausted.

A committed sale redeems with conditional UPDATEs (the coupon's uses, the offer's redemptions
and budget) so two tills racing for the last use cannot both win: the loser's sale is refused
whole with a 409 naming the coupon, and its till quotes again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from loyalty.coupons.discounts import (
    CouponDiscount,
    PricedCoupons,
    combined_multiplier,
    price_coupons,
)
from loyalty.coupons.models import (
    Coupon,
    CouponRedemption,
    CouponSource,
    CouponStatus,
    Offer,
    OfferStatus,
    RedemptionStatus,
)
from loyalty.coupons.offers import POINTS_KINDS, benefit_of
from loyalty.coupons.services import find_coupons, issue_coupon, take_back_issued, uses_allowed
from loyalty.errors import Conflict, NotFound
from loyalty.rules.pricing import BasketLine
from loyalty.versioned import VersionedCache

NO_MULTIPLIER = 100  # percent

MESSAGES = {
    "unknown": "no such coupon",
    "cancelled": "this coupon was cancelled",
    "not_this_member": "this coupon belongs to another member",
    "needs_member": "this coupon is a member's: scan their card first",
    "not_started": "this coupon cannot be used yet",
    "expired": "this coupon has expired",
    "not_in_store": "this coupon is not valid in this store",
    "tier": "this coupon is for another tier",
    "min_basket": "the basket is below this coupon's minimum",
    "used_up": "this coupon has been used up",
    "budget_exhausted": "this offer's budget is spent",
    "member_limit": "the member has used this offer as often as it allows",
    "not_combinable": "this coupon cannot be combined with the others in the basket",
}


@dataclass(frozen=True)
class Buyer:
    member_id: int | None
    tier_code: str | None


@dataclass(frozen=True)
class Applied:
    """A coupon that applies, with what it gives in this basket."""

    coupon_id: int
    offer_id: int
    offer_version: int
    code: str
    points_kind: bool
    discount: CouponDiscount
    limited_per_member: bool
    budget_left: int | None
    uses_allowed: int | None  # uses of this coupon (None: no limit; its row counts them if set)
    guarded: bool  # the offer has a total, a budget or a limit per member: its row counts


@dataclass(frozen=True)
class Check:
    code: str
    applied: bool
    reason: str | None = None
    message: str | None = None
    offer_id: int | None = None
    amount: int = 0
    points: int = 0


@dataclass(frozen=True)
class Checked:
    checks: tuple[Check, ...]
    applied: tuple[Applied, ...]
    priced: PricedCoupons
    extra_points: int
    multiplier_percent: int

    def with_points(self, earned_by_rules: int) -> tuple[int, dict[str, int], tuple[Check, ...]]:
        """The points the coupons add to what the rules earned (a multiplier applies to the
        rules' points, the highest one only, within what its budget has left), each applied
        coupon's points, and the checks with those points filled in."""
        points = {a.code: a.discount.extra_points for a in self.applied}
        bonus = 0
        if self.multiplier_percent > NO_MULTIPLIER:
            top = next(
                a for a in self.applied if a.discount.multiplier_percent == self.multiplier_percent
            )
            bonus = max(0, earned_by_rules * (self.multiplier_percent - 100) // 100)
            if top.budget_left is not None:
                bonus = min(bonus, top.budget_left)
            points[top.code] += bonus
        checks = tuple(
            replace(check, points=points[check.code]) if check.applied else check
            for check in self.checks
        )
        return self.extra_points + bonus, points, checks


def _refused(code: str, reason: str, offer_id: int | None = None) -> Check:
    wire = "unknown" if reason == "cancelled" else reason
    wire = "not_this_member" if reason == "needs_member" else wire
    return Check(code, applied=False, reason=wire, message=MESSAGES[reason], offer_id=offer_id)


def _period_start(period: str, now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    return local


def _member_uses(
    session: Session, member_id: int, offer_id: int, since: datetime | None = None
) -> int:
    query = select(func.count()).where(
        CouponRedemption.member_id == member_id,
        CouponRedemption.offer_id == offer_id,
        CouponRedemption.status == RedemptionStatus.REDEEMED,
    )
    if since is not None:
        query = query.where(CouponRedemption.redeemed_at >= since)
    return int(session.scalar(query) or 0)


def _member_limit_reached(
    session: Session, offer: Offer, member_id: int, now: datetime, zone: ZoneInfo
) -> bool:
    if offer.uses_per_member is not None and (
        _member_uses(session, member_id, offer.id) >= offer.uses_per_member
    ):
        return True
    if offer.uses_per_member_per_period is not None and offer.period is not None:
        since = _period_start(offer.period, now, zone)
        return _member_uses(session, member_id, offer.id, since) >= offer.uses_per_member_per_period
    return False


def _refusal(
    session: Session,
    coupon: Coupon,
    offer: Offer,
    *,
    buyer: Buyer,
    store_code: str | None,
    subtotal: int,
    now: datetime,
    zone: ZoneInfo,
) -> str | None:
    """The first check the coupon fails, in the order of the module's docstring."""
    starts = [m for m in (offer.starts_at, coupon.valid_from) if m is not None]
    ends = [m for m in (offer.ends_at, coupon.valid_until) if m is not None]
    owner = coupon.member_id
    limited = offer.uses_per_member is not None or offer.uses_per_member_per_period is not None
    checks: list[tuple[str, Callable[[], bool]]] = [
        ("cancelled", lambda: coupon.status != CouponStatus.ACTIVE),
        ("unknown", lambda: offer.status != OfferStatus.ACTIVE),
        ("needs_member", lambda: owner is not None and buyer.member_id is None),
        ("not_this_member", lambda: owner is not None and owner != buyer.member_id),
        ("not_started", lambda: bool(starts) and now < max(starts)),
        ("expired", lambda: bool(ends) and now >= min(ends)),
        ("not_in_store", lambda: bool(offer.store_codes) and store_code not in offer.store_codes),
        ("tier", lambda: bool(offer.tier_codes) and buyer.tier_code not in offer.tier_codes),
        ("min_basket", lambda: subtotal < offer.min_basket),
        ("used_up", lambda: _used_up(coupon, offer)),
        (
            "budget_exhausted",
            lambda: offer.budget is not None and offer.budget_used >= offer.budget,
        ),
        (
            "member_limit",
            lambda: (
                limited
                and (
                    buyer.member_id is None
                    or _member_limit_reached(session, offer, buyer.member_id, now, zone)
                )
            ),
        ),
    ]
    return next((reason for reason, fails in checks if fails()), None)


def _used_up(coupon: Coupon, offer: Offer) -> bool:
    allowed = uses_allowed(coupon, offer)
    return (allowed is not None and coupon.uses >= allowed) or (
        offer.total_redemptions is not None and offer.redeemed_count >= offer.total_redemptions
    )


GUARDED = (
    Offer.total_redemptions.is_not(None)
    | Offer.budget.is_not(None)
    | Offer.uses_per_member.is_not(None)
    | Offer.uses_per_member_per_period.is_not(None)
)


def guarded(offer: Offer) -> bool:
    """Whether the offer's row counts its redemptions and budget (it has a limit to keep)."""
    return (
        offer.total_redemptions is not None
        or offer.budget is not None
        or offer.uses_per_member is not None
        or offer.uses_per_member_per_period is not None
    )


def _combinable(offer: Offer, taken: Sequence[Offer], per_basket: int) -> bool:
    if len(taken) >= per_basket:
        return False
    for other in taken:
        if other.id == offer.id or offer.exclusive or other.exclusive:
            return False
        if offer.combinable_with and other.id not in offer.combinable_with:
            return False
        if other.combinable_with and offer.id not in other.combinable_with:
            return False
    return True


def check_coupons(
    session: Session,
    codes: Sequence[str],
    *,
    lines: Sequence[BasketLine],
    buyer: Buyer,
    store_code: str | None,
    now: datetime,
    zone: ZoneInfo,
    per_basket: int,
) -> Checked:
    """Which codes apply to this basket and what they give; nothing is written."""
    subtotal = sum(line.amount for line in lines)
    checks: dict[int, Check] = {}
    candidates: list[tuple[int, Coupon, Offer]] = []
    seen: set[str] = set()
    for index, (code, found) in enumerate(zip(codes, find_coupons(session, codes), strict=True)):
        if found is None:
            checks[index] = _refused(code, "unknown")
            continue
        coupon, offer = found
        if coupon.key in seen:
            checks[index] = _refused(code, "not_combinable", offer.id)
            continue
        seen.add(coupon.key)
        reason = _refusal(
            session,
            coupon,
            offer,
            buyer=buyer,
            store_code=store_code,
            subtotal=subtotal,
            now=now,
            zone=zone,
        )
        if reason is None and not _combinable(offer, [o for _, _, o in candidates], per_basket):
            reason = "not_combinable"
        if reason is not None:
            checks[index] = _refused(code, reason, offer.id)
            continue
        candidates.append((index, coupon, offer))
    while True:
        priced = price_coupons(lines, [(codes[i], benefit_of(o)) for i, _, o in candidates])
        over = [
            position
            for position, ((_, _, offer), discount) in enumerate(
                zip(candidates, priced.coupons, strict=True)
            )
            if offer.budget is not None
            and offer.budget - offer.budget_used
            < (discount.extra_points if offer.kind in POINTS_KINDS else discount.amount)
        ]
        if not over:
            break
        index, _, offer = candidates.pop(over[0])
        checks[index] = _refused(codes[index], "budget_exhausted", offer.id)
    applied = []
    for (index, coupon, offer), discount in zip(candidates, priced.coupons, strict=True):
        applied.append(
            Applied(
                coupon_id=coupon.id,
                offer_id=offer.id,
                offer_version=offer.version,
                code=coupon.code,
                points_kind=offer.kind in POINTS_KINDS,
                discount=discount,
                limited_per_member=offer.uses_per_member is not None
                or offer.uses_per_member_per_period is not None,
                budget_left=None if offer.budget is None else offer.budget - offer.budget_used,
                uses_allowed=uses_allowed(coupon, offer),
                guarded=guarded(offer),
            )
        )
        checks[index] = Check(
            coupon.code,
            applied=True,
            offer_id=offer.id,
            amount=discount.amount,
            points=discount.extra_points,
        )
    return Checked(
        checks=tuple(checks[i] for i in range(len(codes))),
        applied=tuple(applied),
        priced=priced,
        extra_points=sum(a.discount.extra_points for a in applied),
        multiplier_percent=combined_multiplier([a.discount for a in applied]),
    )


class CouponUnavailable(Conflict):
    """Another till took the coupon's last use (or the offer's last redemption or budget)
    between the quote and this sale."""

    title = "Coupon no longer available"


class UnknownCoupon(NotFound):
    title = "No such coupon"


def refuse_unapplied(checked: Checked) -> None:
    """A sale applies every coupon it carries, or is not recorded: the customer was quoted
    with them. An unknown code is a 404 (a failed look-up, budgeted like an unknown card);
    any other refusal a 409 naming each coupon and why (used up meanwhile, expired, …). The
    till quotes again without them."""
    refused = [check for check in checked.checks if not check.applied]
    if not refused:
        return
    messages = [f"{check.code}: {check.reason} ({check.message})" for check in refused]
    errors = {"coupon_codes": messages}
    if any(check.reason == "unknown" for check in refused):
        raise UnknownCoupon("a coupon of the sale does not exist: see errors", errors=errors)
    raise CouponUnavailable(
        "a coupon of the sale does not apply (any more): quote the basket again", errors=errors
    )


def redeem_coupons(
    session: Session,
    applied: Sequence[Applied],
    *,
    points_by_code: dict[str, int],
    sale_id: int,
    member_id: int | None,
    now: datetime,
    zone: ZoneInfo,
) -> None:
    """Record each coupon's use with the sale. Conditional UPDATEs: a use that another sale
    took meanwhile refuses this sale whole (the caller's transaction rolls back)."""
    connection = session.connection()
    rows = []
    # rows are locked in one order (offer, then coupon) by every sale: no two sales deadlock
    for coupon in sorted(applied, key=lambda a: (a.offer_id, a.coupon_id)):
        points = points_by_code.get(coupon.code, 0)
        spent = points if coupon.points_kind else coupon.discount.amount
        taken = (
            coupon.uses_allowed is None
            or connection.execute(
                update(Coupon)
                .where(
                    Coupon.id == coupon.coupon_id,
                    Coupon.status == CouponStatus.ACTIVE,
                    Coupon.uses < coupon.uses_allowed,
                )
                .values(uses=Coupon.uses + 1)
            ).rowcount
        )
        # an offer without limits is not counted here (its figures are summed from the
        # redemptions): no row every till of the fleet would queue on
        counted = taken and (
            not coupon.guarded
            or connection.execute(
                update(Offer)
                .where(
                    Offer.id == coupon.offer_id,
                    Offer.status == OfferStatus.ACTIVE,
                    Offer.total_redemptions.is_(None)
                    | (Offer.redeemed_count < Offer.total_redemptions),
                    Offer.budget.is_(None) | (Offer.budget_used + spent <= Offer.budget),
                )
                .values(
                    redeemed_count=Offer.redeemed_count + 1, budget_used=Offer.budget_used + spent
                )
            ).rowcount
        )
        if not counted:
            raise CouponUnavailable(
                f"coupon {coupon.code} was used up meanwhile: quote the basket again",
                field="coupon_codes",
            )
        if coupon.limited_per_member and member_id is not None:
            offer = session.get(Offer, coupon.offer_id, populate_existing=True)
            assert offer is not None
            # the offer's row is locked by the UPDATE above: the member's uses are counted
            # with no other sale of this offer in between
            if _member_limit_reached(session, offer, member_id, now, zone):
                raise CouponUnavailable(
                    f"coupon {coupon.code}: the member reached the offer's limit meanwhile",
                    field="coupon_codes",
                )
        rows.append(
            {
                "coupon_id": coupon.coupon_id,
                "offer_id": coupon.offer_id,
                "offer_version": coupon.offer_version,
                "sale_id": sale_id,
                "member_id": member_id,
                "amount": coupon.discount.amount,
                "points": points,
                "budget_spent": spent,
                "status": RedemptionStatus.REDEEMED,
                "redeemed_at": now,
            }
        )
    connection.execute(insert(CouponRedemption), rows)


_uses_per_coupon = (
    select(Offer.uses_per_coupon).where(Offer.id == Coupon.offer_id).scalar_subquery()
)


def give_back(session: Session, sale_id: int, now: datetime) -> int:
    """A full return or a void: every coupon the sale used can be used again, and its offer's
    redemption and budget come back, and the next-visit coupons it earned, if unused, stop
    working. How many coupons the sale had used were given back."""
    redemptions = list(
        session.scalars(
            select(CouponRedemption)
            .where(
                CouponRedemption.sale_id == sale_id,
                CouponRedemption.status == RedemptionStatus.REDEEMED,
            )
            .with_for_update()
        )
    )
    connection = session.connection()
    for redemption in redemptions:
        redemption.status = RedemptionStatus.RETURNED
        redemption.returned_at = now
        # what redeem_coupons counted, uncounted (offers' limits may have changed since:
        # update_offer recounts from the redemptions then)
        connection.execute(
            update(Coupon)
            .where(
                Coupon.id == redemption.coupon_id,
                Coupon.uses > 0,
                _uses_per_coupon.is_not(None) | Coupon.member_id.is_not(None),
            )
            .values(uses=Coupon.uses - 1)
        )
        connection.execute(
            update(Offer)
            .where(Offer.id == redemption.offer_id, Offer.redeemed_count > 0, GUARDED)
            .values(
                redeemed_count=Offer.redeemed_count - 1,
                budget_used=func.max(Offer.budget_used - redemption.budget_spent, 0)
                if connection.dialect.name == "sqlite"
                else func.greatest(Offer.budget_used - redemption.budget_spent, 0),
            )
        )
    session.flush()
    take_back_issued(session, sale_id, now, source=CouponSource.NEXT_VISIT)
    return len(redemptions)


# "Next visit" coupons


@dataclass(frozen=True)
class _NextVisitOffer:
    id: int
    min_total: int
    valid_days: int | None
    store_codes: tuple[str, ...]
    starts_at: datetime | None
    ends_at: datetime | None


_next_visit_offers: VersionedCache[tuple[_NextVisitOffer, ...]] = VersionedCache()


def _load_next_visit(session: Session) -> tuple[_NextVisitOffer, ...]:
    rows = session.scalars(
        select(Offer).where(
            Offer.status == OfferStatus.ACTIVE, Offer.issue_at_sale_min.is_not(None)
        )
    )
    return tuple(
        _NextVisitOffer(
            o.id,
            int(o.issue_at_sale_min or 0),
            o.coupon_valid_days,
            tuple(o.store_codes or ()),
            o.starts_at,
            o.ends_at,
        )
        for o in rows
    )


def issue_next_visit(
    session: Session,
    *,
    config_version: str,
    sale_id: int,
    member_id: int,
    paid: int,
    store_code: str | None,
    occurred_at: datetime,
    now: datetime,
    zone: ZoneInfo,
) -> list[str]:
    """Coupons this sale earns for the member's next visit: usable from the next local day
    for the offer's `coupon_valid_days` (or until the offer ends). The list of such offers is
    read once per configuration version, so a sale pays nothing when there are none."""
    offers = _next_visit_offers.get(session, config_version, lambda: _load_next_visit(session))
    issued = []
    for offer in offers:
        if paid < offer.min_total or (offer.store_codes and store_code not in offer.store_codes):
            continue
        if (offer.starts_at and occurred_at < offer.starts_at) or (
            offer.ends_at and occurred_at >= offer.ends_at
        ):
            continue
        local = occurred_at.astimezone(zone)
        tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        row = session.get(Offer, offer.id)
        assert row is not None
        coupon = issue_coupon(
            session,
            row,
            member_id=member_id,
            source=CouponSource.NEXT_VISIT,
            now=now,
            valid_from=tomorrow,
            valid_until=tomorrow + timedelta(days=offer.valid_days) if offer.valid_days else None,
            sale_id=sale_id,
        )
        issued.append(coupon.code)
    return issued
