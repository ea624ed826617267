"""Offers. An offer's definition is validated by the domain (loyalty/coupons/schemas.py, shared
with the CLI); the shapes here are what the API answers, and what a client should send."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import Schema, fields, pre_dump, validate

from api.fields import StrictSchema, Text, positive_id
from loyalty.coupons.offers import OfferView
from loyalty.coupons.schemas import CodeSpecDefinition, OfferDefinition


class OfferSchema(OfferDefinition):
    """An offer with what is left of its limits (null: no limit)."""

    @pre_dump
    def _flat(self, offer: OfferView, **_kwargs: Any) -> dict[str, Any]:
        """The definition's fields beside the offer's own, as one object."""
        own = {f.name: getattr(offer, f.name) for f in dataclass_fields(offer)}
        definition: dict[str, Any] = own.pop("definition")
        return definition | own

    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "active or archived"})
    version = fields.Integer(required=True, metadata={"description": "goes up with each change"})
    redeemed_count = fields.Integer(required=True)
    budget_used = fields.Integer(required=True)
    redemptions_left = fields.Integer(required=True, allow_none=True)
    budget_left = fields.Integer(required=True, allow_none=True)
    budget_unit = fields.String(required=True, metadata={"description": "money or points"})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ListQuerySchema(StrictSchema):
    include_archived = fields.Boolean(load_default=False)


class SharedCodeSchema(StrictSchema):
    code = Text(
        required=True,
        validate=validate.Length(min=3, max=40),
        metadata={"description": 'a code many people type, e.g. "SUMMER10"'},
    )


class GenerateSchema(CodeSpecDefinition):
    """How many unique codes, and how they look (pattern with # placeholders, or a length)."""


class BatchSchema(Schema):
    id = fields.Integer(required=True)
    offer_id = fields.Integer(required=True)
    requested = fields.Integer(required=True)
    made = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "queued, running, done"})
    error = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(required=True, allow_none=True)


class AssignSchema(StrictSchema):
    member_ids = fields.List(
        positive_id(), required=True, validate=validate.Length(min=1, max=1_000_000)
    )


class AssignmentSchema(Schema):
    id = fields.Integer(required=True)
    offer_id = fields.Integer(required=True)
    requested = fields.Integer(required=True)
    processed = fields.Integer(required=True)
    assigned = fields.Integer(required=True)
    already_had = fields.Integer(required=True)
    not_members = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "queued, running, done"})
    created_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(required=True, allow_none=True)


class AssignedSchema(Schema):
    assigned = fields.Integer(required=True)
    already_had = fields.Integer(required=True)
    not_members = fields.List(fields.Integer(), required=True)
