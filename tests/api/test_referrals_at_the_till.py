""" "Friend brings friend" end to end through the till: a friend enrols with a member's code,
their first qualifying purchase rewards both, and the full return of that purchase (which also
used a coupon) takes everything back: points, the coupon's use and its offer's budget, the
referral's state. check-ledger holds throughout (the session fixture checks it at the end)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.settings import LookupKeys
from tests.factories import Till, make_member, make_till, qr_of, sale_body, staff_headers

API = "/api/v1"


def _balance(client: FlaskClient, till: Till, code: str) -> dict[str, int]:
    identified = client.post(f"{API}/pos/identify", headers=till.headers, json={"code": code})
    assert identified.status_code == 200, identified.get_json()
    return identified.get_json()["balance"]


def _enrol_friend(client: FlaskClient, till: Till, code: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Friend", "email": "friend@example.com", "referral_code": code} | fields
    response = client.post(f"{API}/members", headers=till.headers, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_friends_first_purchase_rewards_both_and_its_full_return_takes_it_all_back(
    client: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    marketer = staff_headers(session, clock, "offers")
    advocate, advocate_card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    advocate_qr = qr_of(advocate_card, keys)
    referral = client.get(f"{API}/members/{advocate.id}/referral", headers=till.headers)
    assert referral.status_code == 200, referral.get_json()
    code = referral.get_json()["code"]
    assert referral.get_json()["link"] == f"/join/{code}"

    friend = _enrol_friend(client, till, code.lower())
    friend_card = friend["cards"][0]["number"]
    own = client.get(f"{API}/members/{friend['id']}/referral", headers=till.headers).get_json()
    assert own["joined_through"]["status"] == "pending"

    offer = client.post(
        f"{API}/offers",
        headers=marketer,
        json={"name": "Welcome", "kind": "amount_off", "value": 200, "budget": 1000},
    ).get_json()
    client.post(
        f"{API}/offers/{offer['id']}/shared-codes", headers=marketer, json={"code": "HELLO"}
    )
    # the basket of sale_body: 1,778; minus the coupon's 200 = 1,578 paid (over the 1,000 the
    # referral asks by default): 15 points earned, 500 to the advocate, 250 to the friend
    sale = client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body("FIRST", friend_card, clock.now(), coupon_codes=["HELLO"]),
    )
    assert sale.status_code == 201, sale.get_json()
    assert sale.get_json()["total"] == 1578
    assert _balance(client, till, advocate_qr) == {"available": 500, "pending": 0}
    assert _balance(client, till, friend_card) == {"available": 15 + 250, "pending": 0}
    own = client.get(f"{API}/members/{friend['id']}/referral", headers=till.headers).get_json()
    assert own["joined_through"]["status"] == "rewarded"
    used = client.get(f"{API}/offers/{offer['id']}", headers=marketer).get_json()
    assert (used["redeemed_count"], used["budget_left"]) == (1, 800)

    returned = client.post(
        f"{API}/pos/transactions/FIRST/returns",
        headers=till.headers,
        json={
            "external_id": "BACK",
            "lines": [
                {"sku": "MILK", "quantity": 2},
                {"sku": "BREAD", "quantity": 1},
                {"sku": "COFFEE", "quantity": 1},
                {"sku": "APPLES", "quantity": 3},
                {"sku": "SOAP", "quantity": 1},
            ],
        },
    )
    assert returned.status_code == 201, returned.get_json()
    assert returned.get_json()["sale_status"] == "returned"
    assert returned.get_json()["coupons_returned"] == 1
    assert _balance(client, till, advocate_qr) == {"available": 0, "pending": 0}
    assert _balance(client, till, friend_card) == {"available": 0, "pending": 0}
    own = client.get(f"{API}/members/{friend['id']}/referral", headers=till.headers).get_json()
    assert own["joined_through"]["status"] == "reversed"
    back = client.get(f"{API}/offers/{offer['id']}", headers=marketer).get_json()
    assert (back["redeemed_count"], back["budget_left"]) == (0, 1000)
    funnel = client.get(f"{API}/members/{advocate.id}/referral", headers=till.headers).get_json()
    assert funnel["funnel"]["reversed"] == 1


def test_a_friend_paying_with_the_advocates_card_rewards_nobody(
    client: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    advocate, advocate_card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    code = client.get(f"{API}/members/{advocate.id}/referral", headers=till.headers).get_json()[
        "code"
    ]
    # the advocate pays with their card once: the POS sends its token
    paid = client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body(
            "ADV", qr_of(advocate_card, keys), clock.now(), payment_fingerprint="tok_visa_4242"
        ),
    )
    assert paid.status_code == 201, paid.get_json()
    friend = _enrol_friend(client, till, code, email="sneaky@example.com")
    sale = client.post(
        f"{API}/pos/transactions",
        headers=till.headers,
        json=sale_body(
            "F1", friend["cards"][0]["number"], clock.now(), payment_fingerprint="tok_visa_4242"
        ),
    )
    assert sale.status_code == 201
    own = client.get(f"{API}/members/{friend['id']}/referral", headers=till.headers).get_json()
    assert own["joined_through"] == own["joined_through"] | {
        "status": "refused",
        "reason": "same_as_advocate",
    }
    assert _balance(client, till, qr_of(advocate_card, keys))["available"] == 17  # its own sale


def test_a_sale_sent_again_with_an_empty_payment_fingerprint_is_the_same_sale(
    client: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    member, card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    body = sale_body("REPLAY", qr_of(card, keys), clock.now())
    first = client.post(f"{API}/pos/transactions", headers=till.headers, json=body)
    again = client.post(
        f"{API}/pos/transactions", headers=till.headers, json=body | {"payment_fingerprint": None}
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_data() == first.get_data()
    assert member.id == first.get_json()["member_id"]


def test_taking_back_one_referral_cancels_only_the_coupon_it_gave(
    client: FlaskClient, session: Session, keys: LookupKeys, clock: FixedClock
):
    till = make_till(session, clock)
    staff = staff_headers(session, clock, "offers", "referrals")
    offer = client.post(
        f"{API}/offers", headers=staff, json={"name": "Thanks", "kind": "amount_off", "value": 300}
    ).get_json()
    changed = client.patch(
        f"{API}/referral-settings", headers=staff, json={"referrer_offer_id": offer["id"]}
    )
    assert changed.status_code == 200, changed.get_json()
    advocate, _card = make_member(session, keys, clock, store_id=till.terminal.store_id)
    code = client.get(f"{API}/members/{advocate.id}/referral", headers=till.headers).get_json()[
        "code"
    ]
    for n in range(2):
        friend = _enrol_friend(client, till, code, email=f"friend{n}@example.com")
        sold = client.post(
            f"{API}/pos/transactions",
            headers=till.headers,
            json=sale_body(f"FRIEND-{n}", friend["cards"][0]["number"], clock.now()),
        )
        assert sold.status_code == 201, sold.get_json()
    wallet = client.get(f"{API}/members/{advocate.id}/coupons", headers=till.headers).get_json()
    assert len(wallet["coupons"]) == 2

    client.post(f"{API}/pos/transactions/FRIEND-0/void", headers=till.headers)

    wallet = client.get(f"{API}/members/{advocate.id}/coupons", headers=till.headers).get_json()
    assert len(wallet["coupons"]) == 1
