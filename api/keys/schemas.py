"""Keys: tills' keys rotated and revoked, staff keys listed. Keys are shown once, when made."""

from __future__ import annotations

from marshmallow import Schema, fields, post_load, validate

from api.fields import StrictSchema

WEEK_MINUTES = 7 * 24 * 60


class TerminalSchema(Schema):
    id = fields.Integer(required=True)
    store_code = fields.String(required=True)
    name = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    rotated_at = fields.AwareDateTime(required=True, allow_none=True)
    previous_key_valid_until = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "until when the key a rotation replaced still works"},
    )
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)


class TerminalListSchema(Schema):
    terminals = fields.List(fields.Nested(TerminalSchema), required=True)


class RotateSchema(StrictSchema):
    grace_minutes = fields.Integer(
        load_default=0,
        strict=True,
        validate=validate.Range(min=0, max=WEEK_MINUTES),
        metadata={"description": "how long the old key keeps working (0: it stops now)"},
    )

    @post_load
    def _minutes(self, data: dict[str, int], **_: object) -> int:
        return data["grace_minutes"]


class RotatedSchema(Schema):
    terminal = fields.Nested(TerminalSchema, required=True)
    key = fields.String(required=True, metadata={"description": "the new key, shown this once"})


class StaffKeySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    created_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(required=True, allow_none=True)


class StaffKeyListSchema(Schema):
    staff_keys = fields.List(fields.Nested(StaffKeySchema), required=True)
