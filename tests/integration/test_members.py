"""Member status: blocking and erasure, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from loyalty.audit.models import AuditEntry
from loyalty.cards.errors import CardBlocked
from loyalty.checkout.identify import identify
from loyalty.members.errors import ContactTaken, MemberBlocked, UnknownMember
from loyalty.members.models import ConsentEvent, Member
from loyalty.members.services import erase, get_member, set_blocked
from tests.factories import make_member, make_till, qr_of, sell


def test_a_blocked_member_is_refused_at_the_till_until_unblocked(session, keys, clock):
    member, card = make_member(session, keys, clock)
    set_blocked(
        session, member_id=member.id, blocked=True, reason="fraud", actor="cli:ops", now=clock.now()
    )
    with pytest.raises(MemberBlocked):
        identify(session, qr_of(card, keys), keys, clock.now())
    set_blocked(
        session,
        member_id=member.id,
        blocked=False,
        reason="cleared",
        actor="cli:ops",
        now=clock.now(),
    )
    assert identify(session, qr_of(card, keys), keys, clock.now()).member_id == member.id
    actions = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.subject_type == "member", AuditEntry.subject_id == str(member.id))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["member.enrol", "member.block", "member.unblock"]


def test_a_blocked_members_email_cannot_be_used_to_enrol_again(session, keys, clock):
    member, _ = make_member(session, keys, clock, email="fraud@example.com")
    set_blocked(
        session, member_id=member.id, blocked=True, reason="fraud", actor="cli:ops", now=clock.now()
    )
    with pytest.raises(ContactTaken):
        make_member(session, keys, clock, email="fraud@example.com")


def test_erasure_removes_personal_data_and_keeps_the_figures(session, keys, clock):
    till = make_till(session, clock)
    member, card = make_member(
        session, keys, clock, email="gone@example.com", phone="+44 20 7946 0044", sms_consent=True
    )
    sell(session, till, keys, clock, member=member)
    erase(session, member_id=member.id, reason="customer request", actor="cli:dpo", now=clock.now())
    session.flush()
    stored = session.get(Member, member.id)
    assert (stored.name, stored.email, stored.phone, stored.sms_consent_at) == (
        "(erased)",
        None,
        None,
        None,
    )
    with pytest.raises(UnknownMember):
        get_member(session, member.id)
    with pytest.raises(CardBlocked):
        identify(session, qr_of(card, keys), keys, clock.now())
    # the contacts are free again
    new_member, _ = make_member(
        session, keys, clock, email="gone@example.com", phone="+44 20 7946 0044"
    )
    assert new_member.id != member.id


def test_program_changes_are_audited_with_before_and_after(session, clock):
    from loyalty.program import get_program, update_program  # noqa: PLC0415

    update_program(session, actor="cli:owner", now=clock.now(), earn_points=2)
    assert get_program(session).earn_points == 2
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "program.update")).all()[
        -1
    ]
    assert (audit.actor, audit.details) == (
        "cli:owner",
        {"before": {"earn_points": 1}, "after": {"earn_points": 2}},
    )


def test_an_erasure_withdraws_the_consents_on_record(session, keys, clock):
    member, _ = make_member(session, keys, clock, email_consent=True)
    clock.advance(timedelta(days=1))

    erase(session, member_id=member.id, reason="asked", actor="staff:1", now=clock.now())

    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.member_id == member.id).order_by(ConsentEvent.id)
    ).all()
    assert [(e.channel, e.granted, e.source, e.at) for e in events] == [
        ("email", True, "test", clock.now() - timedelta(days=1)),
        ("email", False, "staff:1", clock.now()),
    ]
