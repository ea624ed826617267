"""Imports every model so that the metadata is complete (Alembic, create_all in tests)."""

from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card, CardBatch
from loyalty.coupons.models import (
    CodeBatch,
    Coupon,
    CouponAssignment,
    CouponRedemption,
    Offer,
    Reward,
    RewardClaim,
)
from loyalty.db import Base
from loyalty.idempotency import IdempotentRequest
from loyalty.jobs.models import JobRun
from loyalty.ledger.models import LotDraw, PointAccount, PointEntry, PointLot
from loyalty.members.models import ConsentEvent, Member, MemberSignInCode
from loyalty.messaging.models import OutboxMessage
from loyalty.program import Program
from loyalty.referrals.models import (
    MemberReferralCode,
    Referral,
    ReferralContact,
    ReferralLinkOpen,
    ReferralPaymentFingerprint,
    ReferralSettings,
)
from loyalty.rules.models import EarnAward, EarnRule
from loyalty.sales.models import Sale, SaleLine, SaleReturn
from loyalty.staff.models import StaffAccount, StaffKey
from loyalty.stores.models import Store, Terminal
from loyalty.tiers.models import MemberTier, Tier

__all__ = [
    "AuditEntry",
    "Base",
    "Card",
    "CardBatch",
    "CodeBatch",
    "ConsentEvent",
    "Coupon",
    "CouponAssignment",
    "CouponRedemption",
    "EarnAward",
    "EarnRule",
    "IdempotentRequest",
    "JobRun",
    "LotDraw",
    "Member",
    "MemberReferralCode",
    "MemberSignInCode",
    "MemberTier",
    "Offer",
    "OutboxMessage",
    "PointAccount",
    "PointEntry",
    "PointLot",
    "Program",
    "Referral",
    "ReferralContact",
    "ReferralLinkOpen",
    "ReferralPaymentFingerprint",
    "ReferralSettings",
    "Reward",
    "RewardClaim",
    "Sale",
    "SaleLine",
    "SaleReturn",
    "StaffAccount",
    "StaffKey",
    "Store",
    "Terminal",
    "Tier",
]
