"""A request's fingerprint is what replays compare: it must stay the very hash sales recorded
before were stored with (dataclasses.asdict then), or a retried sale would be a 409."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime

from loyalty.checkout.returns import ReturnRequest
from loyalty.checkout.services import Basket, SaleRequest
from loyalty.idempotency import fingerprint
from loyalty.members.services import Enrolment
from loyalty.rules.pricing import BasketLine


def _as_before(request: object) -> str:
    """What was stored before: asdict, without the fields that did not exist then."""
    body = asdict(request)  # type: ignore[call-overload]
    body.pop("payment_fingerprint", None)
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_sale_and_a_return_keep_the_fingerprint_they_were_stored_with():
    sale = SaleRequest(
        external_id="S-1",
        occurred_at=datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
        basket=Basket(
            lines=[BasketLine("MILK", 2, 125, "dairy"), BasketLine("BREAD", 1, 250)],
            member_code="L1000",
            coupon_codes=["SUMMER10"],
            redeem_points=100,
        ),
    )
    returned = ReturnRequest(external_id="R-1", lines=[("MILK", 1)])
    assert fingerprint(sale) == _as_before(sale)
    assert fingerprint(returned) == _as_before(returned)
    assert fingerprint({"a": 1}) == hashlib.sha256(b'{"a": 1}').hexdigest()


def test_fields_added_later_leave_the_fingerprint_of_a_request_without_them_as_it_was():
    enrolment = Enrolment(name="Ada", email="ada@example.com", card_code="L1")
    before = {k: v for k, v in asdict(enrolment).items() if k != "referral_code"}
    canonical = json.dumps(before, sort_keys=True, default=str)
    assert fingerprint(enrolment) == hashlib.sha256(canonical.encode()).hexdigest()
    assert fingerprint(replace(enrolment, referral_code="7K3M9QXD")) != fingerprint(enrolment)
