"""Members: enrolment, the member as shown, changes, staff search, the export of their data."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from api.cards.schemas import CardSchema
from api.fields import PageQuerySchema, StrictBoolean, StrictSchema, Text
from api.ledger.schemas import BalanceSchema, EntrySchema
from api.pos.schemas import SaleViewSchema
from api.tiers.schemas import TierSchema
from loyalty.members.services import KEEP, Enrolment, MemberChanges, MemberSearch

_NAME = [
    validate.Length(min=1, max=200),
    validate.Regexp(r"\s*\S", error="A name needs more than blanks."),
]


class ConsentsInSchema(StrictSchema):
    """What the member agreed to be contacted by; nothing is assumed (both default to false)."""

    email = StrictBoolean(load_default=False)
    sms = StrictBoolean(load_default=False)


class ConsentsSchema(Schema):
    """Consents as given, with when (null when not given); the same names as on enrolment."""

    email = fields.Boolean(required=True)
    sms = fields.Boolean(required=True)
    email_given_at = fields.AwareDateTime(required=True, allow_none=True)
    sms_given_at = fields.AwareDateTime(required=True, allow_none=True)


class EnrolSchema(StrictSchema):
    name = Text(required=True, validate=_NAME)
    email = Text(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = Text(load_default=None, allow_none=True, validate=validate.Length(max=32))
    birthday = fields.Date(load_default=None, allow_none=True)
    consents = fields.Nested(ConsentsInSchema, load_default=lambda: {"email": False, "sms": False})
    acquisition_source = Text(load_default=None, allow_none=True, validate=validate.Length(max=80))
    card_code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=64),
        metadata={"description": "a pre-printed card handed over now; omit to issue a new one"},
    )
    referral_code = Text(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={
            "description": "a friend's referral code; a refused referral does not stop the "
            "enrolment (see GET /members/{id}/referral)"
        },
    )

    @post_load
    def _enrolment(self, data: dict[str, Any], **_: object) -> Enrolment:
        consents = data.pop("consents")
        return Enrolment(**data, email_consent=consents["email"], sms_consent=consents["sms"])


class MemberSchema(Schema):
    """A member as a till or the console sees them, with their balance as of now."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    phone = fields.String(required=True, allow_none=True, metadata={"description": "E.164"})
    birthday = fields.Date(required=True, allow_none=True)
    consents = fields.Nested(ConsentsSchema, required=True)
    acquisition_source = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, metadata={"description": "active or blocked"})
    created_at = fields.AwareDateTime(required=True)
    balance = fields.Nested(BalanceSchema, required=True)
    tier = fields.Nested(TierSchema, required=True, allow_none=True)
    cards = fields.List(fields.Nested(CardSchema), required=True)


class ConsentChangeSchema(StrictSchema):
    email = StrictBoolean()
    sms = StrictBoolean()


class MemberChangeSchema(StrictSchema):
    """The fields to change; a field left out stays as it is, null clears an optional one."""

    name = Text(validate=_NAME)
    email = Text(allow_none=True, validate=validate.Length(max=254))
    phone = Text(allow_none=True, validate=validate.Length(max=32))
    birthday = fields.Date(allow_none=True)
    consents = fields.Nested(ConsentChangeSchema)

    @post_load
    def _changes(self, data: dict[str, Any], **_: object) -> MemberChanges:
        consents = data.pop("consents", {})
        return MemberChanges(
            **data,
            email_consent=consents.get("email", KEEP),
            sms_consent=consents.get("sms", KEEP),
        )


class MemberSearchQuerySchema(PageQuerySchema):
    email = Text(validate=validate.Length(min=1, max=254))
    phone = Text(validate=validate.Length(min=1, max=32))
    card_number = Text(validate=validate.Length(min=1, max=40))
    name = Text(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "the start of the name, any case"},
    )

    @post_load
    def _search(self, data: dict[str, Any], **_: object) -> dict[str, Any]:
        criteria = {
            key: data.pop(key) for key in ("email", "phone", "card_number", "name") if key in data
        }
        return {"search": MemberSearch(**criteria), **data}


class MemberSummarySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    phone = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class MemberPageSchema(Schema):
    members = fields.List(fields.Nested(MemberSummarySchema), required=True)
    next_cursor = fields.Integer(
        required=True, allow_none=True, metadata={"description": "pass back as `cursor`"}
    )


class ConsentRecordSchema(Schema):
    channel = fields.String(required=True)
    granted = fields.Boolean(required=True)
    source = fields.String(required=True, metadata={"description": "who recorded it"})
    at = fields.AwareDateTime(required=True)


class MemberExportSchema(Schema):
    """Everything held about the member (the right of access)."""

    exported_at = fields.AwareDateTime(required=True)
    member = fields.Nested(MemberSchema, required=True)
    consent_history = fields.List(fields.Nested(ConsentRecordSchema), required=True)
    entries = fields.List(fields.Nested(EntrySchema), required=True)
    sales = fields.List(fields.Nested(SaleViewSchema), required=True)
