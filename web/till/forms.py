from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange


class SignInForm(FlaskForm):  # type: ignore[misc]
    username = StringField(
        _l("Username"),
        validators=[DataRequired(_l("Enter your username."))],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )


class ScanForm(FlaskForm):  # type: ignore[misc]
    """What a scanner in keyboard mode types, then Enter: a card's QR payload, a card number,
    a coupon's code, a phone or an email."""

    code = StringField(
        _l("Scan a card or a coupon, or type a card number, phone or email"),
        validators=[DataRequired(_l("Scan or type a code.")), Length(max=512)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )


class LineForm(FlaskForm):  # type: ignore[misc]
    """A basket line; the unit price is in the currency's minor units (cents), as the API
    takes it, so nothing is rounded between what the cashier types and what is recorded."""

    sku = StringField(
        _l("SKU"),
        validators=[DataRequired(_l("Enter the item's SKU.")), Length(max=64)],
        render_kw={"autocomplete": "off", "autocapitalize": "none"},
    )
    quantity = IntegerField(
        _l("Quantity"),
        default=1,
        validators=[
            InputRequired(_l("Enter a quantity.")),
            NumberRange(1, 9999, _l("A quantity is 1 to 9999.")),
        ],
    )
    unit_price = IntegerField(
        _l("Unit price (in cents)"),
        validators=[
            InputRequired(_l("Enter the unit price in cents.")),
            NumberRange(0, 100_000_000, _l("A unit price is 0 to 100000000 cents.")),
        ],
    )


class CouponForm(FlaskForm):  # type: ignore[misc]
    coupon_code = StringField(
        _l("Coupon code"),
        validators=[DataRequired(_l("Enter a coupon code.")), Length(max=64)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )


class RedeemForm(FlaskForm):  # type: ignore[misc]
    points = IntegerField(
        _l("Points to redeem"),
        default=0,
        validators=[
            InputRequired(_l("Enter how many points to redeem (0 for none).")),
            NumberRange(0, 100_000_000, _l("Points to redeem are 0 or more.")),
        ],
    )


class VoidForm(FlaskForm):  # type: ignore[misc]
    receipt = StringField(
        _l("Receipt id"),
        validators=[DataRequired(_l("Enter the receipt id of the sale.")), Length(max=64)],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
