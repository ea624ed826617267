"""Offers as data: created, changed and archived by staff (audited). A change applies to coupons
redeemed from then on; a redemption keeps what it gave (and the offer's version) with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.coupons.discounts import Benefit, DiscountKind, Target
from loyalty.coupons.models import (
    Coupon,
    CouponRedemption,
    Offer,
    OfferStatus,
    RedemptionStatus,
)
from loyalty.coupons.schemas import OfferDefinition
from loyalty.db import MAX_ID
from loyalty.errors import InvalidInput, NotFound, flatten_messages
from loyalty.program import new_config_version
from loyalty.stores.models import Store
from loyalty.tiers.models import Tier

DEFINITION_FIELDS = tuple(OfferDefinition().fields)
# the API's names for the columns that carry another name in the table
_COLUMN = {"tiers": "tier_codes", "stores": "store_codes"}
POINTS_KINDS = (DiscountKind.EXTRA_POINTS, DiscountKind.POINTS_MULTIPLIER)


class InvalidOffer(InvalidInput):
    title = "Invalid offer"


@dataclass(frozen=True)
class OfferView:
    """An offer with what is left of its limits (None: no limit)."""

    id: int
    status: str
    version: int
    definition: dict[str, Any]
    redeemed_count: int
    budget_used: int
    redemptions_left: int | None
    budget_left: int | None
    budget_unit: str  # "money" (minor units) or "points"
    created_at: datetime
    updated_at: datetime


def benefit_of(offer: Offer) -> Benefit:
    return Benefit(
        kind=DiscountKind(offer.kind),
        value=offer.value,
        cap=offer.cap,
        target=Target(offer.target),
        skus=tuple(offer.skus or ()),
        categories=tuple(offer.categories or ()),
        buy_quantity=offer.buy_quantity,
        free_quantity=offer.free_quantity,
    )


def _definition(offer: Offer) -> dict[str, Any]:
    return {name: getattr(offer, _COLUMN.get(name, name)) for name in DEFINITION_FIELDS}


def _audited(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in definition.items()
    }


def usage(session: Session, offer_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(redemptions, budget spent) per offer, summed from the redemptions not given back:
    right whether or not the offer's own row counts them (only offers with limits do)."""
    rows = session.execute(
        select(
            CouponRedemption.offer_id,
            func.count(),
            func.coalesce(func.sum(CouponRedemption.budget_spent), 0),
        )
        .where(
            CouponRedemption.offer_id.in_(offer_ids),
            CouponRedemption.status == RedemptionStatus.REDEEMED,
        )
        .group_by(CouponRedemption.offer_id)
    )
    return {offer_id: (int(count), int(spent)) for offer_id, count, spent in rows}


def view(offer: Offer, used: tuple[int, int] = (0, 0)) -> OfferView:
    redeemed, spent = used
    return OfferView(
        id=offer.id,
        status=offer.status,
        version=offer.version,
        definition=_definition(offer),
        redeemed_count=redeemed,
        budget_used=spent,
        redemptions_left=None
        if offer.total_redemptions is None
        else max(0, offer.total_redemptions - redeemed),
        budget_left=None if offer.budget is None else max(0, offer.budget - spent),
        budget_unit="points" if offer.kind in POINTS_KINDS else "money",
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


def validate_definition(session: Session, definition: dict[str, Any]) -> dict[str, Any]:
    """A clean definition, or InvalidOffer with a message per field (nothing written)."""
    try:
        clean: dict[str, Any] = OfferDefinition().load(definition)
    except ValidationError as exc:
        errors = flatten_messages(exc.messages, whole="_offer")
        raise InvalidOffer("the offer has invalid fields: see errors", errors=errors) from exc
    errors = {}
    for name, column in (("tiers", Tier.code), ("stores", Store.code)):
        wanted = set(clean[name])
        unknown = wanted - set(session.scalars(select(column).where(column.in_(wanted))))
        if unknown:
            errors[name] = [f"unknown {name}: {', '.join(sorted(unknown))}"]
    partners = set(clean["combinable_with"])
    unknown_ids = partners - set(session.scalars(select(Offer.id).where(Offer.id.in_(partners))))
    if unknown_ids:
        errors["combinable_with"] = [f"unknown offers: {', '.join(map(str, sorted(unknown_ids)))}"]
    if errors:
        raise InvalidOffer("the offer names things that do not exist: see errors", errors=errors)
    return clean


def _columns(clean: dict[str, Any]) -> dict[str, Any]:
    return {_COLUMN.get(name, name): value for name, value in clean.items()}


def create_offer(
    session: Session, definition: dict[str, Any], *, actor: str, now: datetime
) -> OfferView:
    clean = validate_definition(session, definition)
    offer = Offer(**_columns(clean), created_at=now, updated_at=now, version=1)
    offer.status = OfferStatus.ACTIVE
    offer.redeemed_count = 0
    offer.budget_used = 0
    session.add(offer)
    session.flush()
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="offer.create",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        after=_audited(clean),
    )
    return view(offer)


def get_offer_row(session: Session, offer_id: int, *, lock: bool = False) -> Offer:
    offer = (
        session.get(Offer, offer_id, with_for_update=lock or None)
        if 0 < offer_id <= MAX_ID
        else None
    )
    if offer is None:
        raise NotFound(f"no offer has id {offer_id}", field="offer_id")
    return offer


def _viewed(session: Session, offer: Offer) -> OfferView:
    return view(offer, usage(session, [offer.id]).get(offer.id, (0, 0)))


def get_offer(session: Session, offer_id: int) -> OfferView:
    return _viewed(session, get_offer_row(session, offer_id))


def list_offers(session: Session, *, include_archived: bool = False) -> list[OfferView]:
    query = select(Offer).order_by(Offer.id)
    if not include_archived:
        query = query.where(Offer.status == OfferStatus.ACTIVE)
    found = list(session.scalars(query))
    used = usage(session, [offer.id for offer in found])
    return [view(offer, used.get(offer.id, (0, 0))) for offer in found]


_LIMITS = (
    "uses_per_coupon",
    "total_redemptions",
    "budget",
    "uses_per_member",
    "uses_per_member_per_period",
)


def _recount(session: Session, offer: Offer, clean: dict[str, Any]) -> None:
    """Limits changed: the offer's and its coupons' counters are taken again from the
    redemptions (they are kept only while a limit needs them). A limit below what was already
    used is refused."""
    redeemed, spent = usage(session, [offer.id]).get(offer.id, (0, 0))
    errors = {}
    if clean["total_redemptions"] is not None and clean["total_redemptions"] < redeemed:
        errors["total_redemptions"] = [f"{redeemed} redemptions were made already"]
    if clean["budget"] is not None and clean["budget"] < spent:
        errors["budget"] = [f"{spent} of the budget was spent already"]
    if errors:
        raise InvalidOffer("a limit is below what was used already: see errors", errors=errors)
    offer.redeemed_count, offer.budget_used = redeemed, spent
    session.flush()
    used_by_coupon = (
        select(func.count())
        .where(
            CouponRedemption.coupon_id == Coupon.id,
            CouponRedemption.status == RedemptionStatus.REDEEMED,
        )
        .scalar_subquery()
    )
    session.execute(
        update(Coupon)
        .where(
            Coupon.id.in_(
                select(CouponRedemption.coupon_id).where(CouponRedemption.offer_id == offer.id)
            )
        )
        .values(uses=used_by_coupon),
        execution_options={"synchronize_session": False},
    )


def update_offer(
    session: Session, offer_id: int, changes: dict[str, Any], *, actor: str, now: datetime
) -> OfferView:
    """Change an offer from now on: its version goes up; redemptions keep what they gave."""
    if not changes:
        raise InvalidOffer("name at least one field to change", field="_body")
    offer = get_offer_row(session, offer_id, lock=True)
    if offer.status == OfferStatus.ARCHIVED:
        raise InvalidOffer("an archived offer cannot change; create a new one", field="offer_id")
    before = _definition(offer)
    clean = validate_definition(session, before | changes)
    if offer.id in clean["combinable_with"]:
        raise InvalidOffer("an offer cannot list itself", field="combinable_with")
    if any(clean[name] != before[name] for name in _LIMITS):
        _recount(session, offer, clean)
    for name, value in _columns(clean).items():
        setattr(offer, name, value)
    offer.version += 1
    offer.updated_at = now
    session.flush()
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="offer.update",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        before=_audited(before),
        after=_audited(clean),
    )
    return _viewed(session, offer)


def archive_offer(session: Session, offer_id: int, *, actor: str, now: datetime) -> OfferView:
    """No coupon of the offer is redeemed or issued from now on; its history stays."""
    offer = get_offer_row(session, offer_id, lock=True)
    if offer.status != OfferStatus.ARCHIVED:
        offer.status = OfferStatus.ARCHIVED
        offer.updated_at = now
        session.flush()
        new_config_version(session)
        record(
            session,
            actor=actor,
            action="offer.archive",
            subject_type="offer",
            subject_id=offer.id,
            now=now,
        )
    return _viewed(session, offer)
