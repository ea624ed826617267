"""Status changes under races, on PostgreSQL with real connections released together: exactly one
till may win a card, a block or a replacement; a second enrolment with the same contact is a
409, never a 500; and the audit log shows each change once."""

from __future__ import annotations

from collections import Counter

from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card, CardStatus
from loyalty.cards.services import create_batch
from loyalty.clock import FixedClock
from loyalty.members.models import Member, MemberStatus
from loyalty.members.services import erase, set_blocked
from loyalty.settings import LookupKeys
from tests.conftest import CARD_KEY, START
from tests.factories import make_member, make_till
from tests.races import Post, committed_till_and_member, race, race_calls

THREADS = 8


def _printed_card(engine: Engine) -> tuple[str, str]:
    with Session(engine) as session, session.begin():
        _batch, [card] = create_batch(
            session, card_key=CARD_KEY, size=1, note=None, actor="test", now=START
        )
    return card.number, card.payload


def _audits(engine: Engine, action: str, subject_type: str, subject_id: int | str) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.action == action,
                    AuditEntry.subject_type == subject_type,
                    AuditEntry.subject_id == str(subject_id),
                )
            )
        )


def test_two_tills_handing_out_one_pre_printed_card_to_two_members_one_wins(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, first, _ = committed_till_and_member(race_engine, keys)
    other_till, second, _ = committed_till_and_member(race_engine, keys)
    number, payload = _printed_card(race_engine)

    responses = race(
        live_app,
        [
            Post(f"/api/v1/members/{member.id}/cards", {"card_code": payload}, at.headers)
            for at, member in ((till, first), (other_till, second))
        ],
    )

    assert sorted(r.status_code for r in responses) == [201, 409]
    refused = next(r for r in responses if r.status_code == 409).get_json()
    assert refused["errors"] == {"card_code": [refused["detail"]]}
    with Session(race_engine) as session:
        card = session.scalars(select(Card).where(Card.number == number)).one()
        winner = next(r for r in responses if r.status_code == 201)
        assert winner.request.path == f"/api/v1/members/{card.member_id}/cards"
    with Session(race_engine) as session:
        card_id = session.scalars(select(Card.id).where(Card.number == number)).one()
    assert _audits(race_engine, "card.activate", "card", card_id) == 1


def test_two_enrolments_with_one_pre_printed_card_enrol_one_member(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, _member, _ = committed_till_and_member(race_engine, keys)
    number, payload = _printed_card(race_engine)
    posts = [
        Post("/api/v1/members", {"name": f"Twin {n}", "card_code": payload}, till.headers)
        for n in range(2)
    ]

    responses = race(live_app, posts)

    assert sorted(r.status_code for r in responses) == [201, 409]
    with Session(race_engine) as session:
        twins = session.scalars(select(Member).where(Member.name.like("Twin %"))).all()
        assert len(twins) == 1, "the refused enrolment left no member behind"
        card = session.scalars(select(Card).where(Card.number == number)).one()
        assert card.member_id == twins[0].id


def test_enrolments_racing_with_one_email_give_one_member_and_409s_naming_the_email(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, _member, _ = committed_till_and_member(race_engine, keys)
    body = {"name": "Same Person", "email": "same.person@example.com"}

    responses = race(live_app, [Post("/api/v1/members", body, till.headers)] * THREADS)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: THREADS - 1}, statuses
    for refused in (r.get_json() for r in responses if r.status_code == 409):
        assert list(refused["errors"]) == ["email"]
        assert "same.person" not in refused["detail"]


def test_tills_blocking_one_card_at_once_block_it_once(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, member, _ = committed_till_and_member(race_engine, keys)
    with Session(race_engine) as session:
        card = session.scalars(select(Card).where(Card.member_id == member.id)).one()
    post = Post(f"/api/v1/cards/{card.number}/block", {"reason": "stolen"}, till.headers)

    responses = race(live_app, [post] * THREADS)

    assert {r.status_code for r in responses} == {200}
    assert _audits(race_engine, "card.block", "card", card.id) == 1


def test_tills_replacing_one_card_at_once_give_its_member_one_new_card(
    live_app: Flask, race_engine: Engine, keys: LookupKeys
):
    till, member, _ = committed_till_and_member(race_engine, keys)
    with Session(race_engine) as session:
        card = session.scalars(select(Card).where(Card.member_id == member.id)).one()
    post = Post(f"/api/v1/cards/{card.number}/replace", {"reason": "lost"}, till.headers)

    responses = race(live_app, [post] * 4)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 3}, statuses
    with Session(race_engine) as session:
        cards = session.scalars(select(Card).where(Card.member_id == member.id)).all()
    assert sorted(c.status for c in cards) == [CardStatus.ACTIVE, CardStatus.BLOCKED]


def test_blocking_one_member_at_once_blocks_once_and_erasing_erases_once(
    race_engine: Engine, keys: LookupKeys
):
    clock = FixedClock(START)
    with Session(race_engine, expire_on_commit=False) as session, session.begin():
        make_till(session, clock)
        blocked, _ = make_member(session, keys, clock)
        erased, _ = make_member(session, keys, clock)

    def block() -> None:
        with Session(race_engine) as session, session.begin():
            set_blocked(
                session, member_id=blocked.id, blocked=True, reason="fraud", actor="t", now=START
            )

    def remove() -> None:
        with Session(race_engine) as session, session.begin():
            erase(session, member_id=erased.id, reason="asked", actor="t", now=START)

    blocks = race_calls([block] * THREADS)
    erasures = race_calls([remove] * THREADS)

    assert all(outcome is None for outcome in blocks), blocks
    assert _audits(race_engine, "member.block", "member", blocked.id) == 1
    assert sum(outcome is None for outcome in erasures) == 1, erasures
    assert _audits(race_engine, "member.erase", "member", erased.id) == 1
    with Session(race_engine) as session:
        assert session.get_one(Member, blocked.id).status == MemberStatus.BLOCKED
        assert session.get_one(Member, erased.id).status == MemberStatus.ERASED
