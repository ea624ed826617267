"""Cards: the member's QR card, its status, handing one over, blocking and replacing."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.fields import StrictSchema, Text


class CardSchema(Schema):
    number = fields.String(required=True, metadata={"description": "16 digits, Luhn-checked"})
    status = fields.String(required=True, metadata={"description": "unassigned, active, blocked"})
    qr_payload = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "what the card's QR code holds (signed); null to a till, except on "
            "the card it has just issued or handed out"
        },
    )
    activated_at = fields.AwareDateTime(required=True, allow_none=True)
    blocked_reason = fields.String(required=True, allow_none=True)


class BlockCardSchema(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=200))


class ReplaceCardSchema(BlockCardSchema):
    new_card_code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "a pre-printed card handed over instead; omit to issue one"},
    )


class ActivateCardSchema(StrictSchema):
    card_code = Text(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the pre-printed card's QR payload or number"},
    )
