"""Referrals at the till: a friend's qualifying sale rewards both sides (points through the
ledger, or a coupon of an offer), and the full return or void of that sale takes the rewards
back. loyalty.referrals decides who gets what; this module, above it, the ledger and coupons,
gives and takes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from loyalty.coupons.models import CouponSource, Offer, OfferStatus
from loyalty.coupons.services import issue_coupon, take_back_issued
from loyalty.ledger import services as ledger
from loyalty.ledger.models import EntryKind
from loyalty.program import ProgramSettings
from loyalty.referrals import services as referrals
from loyalty.referrals.services import RewardHook


def _rewarding(
    session: Session, program: ProgramSettings, *, sale_id: int, actor: str, now: datetime
) -> RewardHook:
    def reward(member_id: int, points: int, offer_id: int | None, reason: str) -> None:
        if points:
            # with the qualifying sale: pending like its points, and taken back with it
            ledger.credit(
                session,
                program=program,
                member_id=member_id,
                points=points,
                kind=EntryKind.REFERRAL,
                reason=reason,
                actor=actor,
                now=now,
                sale_id=sale_id,
            )
        if offer_id is not None:
            offer = session.get(Offer, offer_id)
            if offer is not None and offer.status == OfferStatus.ACTIVE:
                issue_coupon(
                    session,
                    offer,
                    member_id=member_id,
                    source=CouponSource.REFERRAL,
                    now=now,
                    sale_id=sale_id,
                )

    return reward


def _taking_back(session: Session, *, sale_id: int, actor: str, now: datetime) -> RewardHook:
    def take_back(member_id: int, points: int, offer_id: int | None, reason: str) -> None:
        if points:
            ledger.reverse_earning(
                session,
                member_id=member_id,
                points=points,
                sale_id=sale_id,
                reason=reason,
                actor=actor,
                now=now,
            )
        if offer_id is not None:
            # this referral's coupon (issued with this sale), if still unused, stops working
            take_back_issued(
                session, sale_id, now, source=CouponSource.REFERRAL, member_id=member_id
            )

    return take_back


def after_sale(
    session: Session,
    program: ProgramSettings,
    *,
    member_id: int,
    sale_id: int,
    kept_total: int,
    occurred_at: datetime,
    payment_fingerprint: str | None,
    actor: str,
    now: datetime,
) -> None:
    referrals.on_sale(
        session,
        member_id=member_id,
        sale_id=sale_id,
        kept_total=kept_total,
        occurred_at=occurred_at,
        payment_fingerprint=payment_fingerprint,
        now=now,
        reward=_rewarding(session, program, sale_id=sale_id, actor=actor, now=now),
    )


def after_full_return(session: Session, *, sale_id: int, actor: str, now: datetime) -> bool:
    """The sale came back whole (a return or a void): a referral it qualified is reversed
    while its window is open. Whether anything was taken back."""
    return referrals.on_full_return(
        session,
        sale_id=sale_id,
        now=now,
        take_back=_taking_back(session, sale_id=sale_id, actor=actor, now=now),
    )
