"""Domain objects to the plain data that response schemas dump."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from loyalty.cards.models import Card
from loyalty.cards.qr import sign_card
from loyalty.ledger.services import Balance
from loyalty.members.models import Member
from loyalty.members.services import CardView


def card_data(card: Card | CardView, card_key: str) -> dict[str, Any]:
    return {
        "number": card.number,
        "status": card.status,
        "qr_payload": sign_card(card_key, card.number),
        "activated_at": card.activated_at,
        "blocked_reason": card.blocked_reason,
    }


def member_data(
    member: Member, balance: Balance, cards: list[Card], card_key: str
) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "email": member.email,
        "phone": member.phone,
        "birthday": member.birthday,
        "consents": {
            "email": member.email_consent_at is not None,
            "email_given_at": member.email_consent_at.isoformat()
            if member.email_consent_at
            else None,
            "sms": member.sms_consent_at is not None,
            "sms_given_at": member.sms_consent_at.isoformat() if member.sms_consent_at else None,
        },
        "acquisition_source": member.acquisition_source,
        "status": member.status,
        "created_at": member.created_at,
        "points": asdict(balance),
        "cards": [card_data(card, card_key) for card in cards],
    }
