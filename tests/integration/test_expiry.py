"""Expiry: each policy's dates, and the expiry job on SQLite and PostgreSQL (one entry per member,
the lots it took recorded, nothing expired twice, the ledger consistent after every step, and a
till redeeming at the same moment on PostgreSQL)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.ledger import services as ledger
from loyalty.ledger.errors import NotEnoughPoints
from loyalty.ledger.expiry import last_day, lot_expiry
from loyalty.ledger.jobs import expire_points, members_with_expired_points
from loyalty.ledger.models import EntryKind, LotDraw, PointEntry, PointLot
from loyalty.members.models import Member
from loyalty.program import ExpiryPolicy, default_settings, update_program
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from tests.conftest import START
from tests.factories import give_points, make_member, make_till, sell


def _at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


# policy, months, zone, earned at (local), last day to spend, expires at (local midnight after)
POLICIES = [
    ("months_after_earning", 1, "UTC", "2026-01-31 12:00", "2026-02-28"),
    ("months_after_earning", 1, "UTC", "2028-01-31 12:00", "2028-02-29"),
    ("months_after_earning", 1, "UTC", "2026-03-30 08:00", "2026-04-30"),
    ("months_after_earning", 12, "UTC", "2026-03-14 10:00", "2027-03-14"),
    ("months_after_earning", 1, "Asia/Tokyo", "2026-01-31 08:00", "2026-02-28"),
    ("months_after_earning_month", 12, "UTC", "2026-03-14 10:00", "2027-03-31"),
    ("months_after_earning_month", 1, "UTC", "2026-01-31 23:59", "2026-02-28"),
    ("months_after_earning_month", 0, "Europe/Berlin", "2026-03-31 23:30", "2026-03-31"),
    ("end_of_year", 0, "UTC", "2026-03-14 10:00", "2026-12-31"),
    ("end_of_year", 12, "UTC", "2026-03-14 10:00", "2027-12-31"),
    ("end_of_year", 1, "UTC", "2026-12-15 10:00", "2027-12-31"),
    ("end_of_year", 12, "America/New_York", "2026-12-31 23:30", "2027-12-31"),
    ("end_of_year", 0, "Pacific/Auckland", "2027-01-01 01:00", "2027-12-31"),
]


@pytest.mark.parametrize(("policy", "months", "zone", "earned", "last"), POLICIES)
def test_each_expiry_policy_gives_the_last_day_in_the_programs_zone(
    policy: str, months: int, zone: str, earned: str, last: str
):
    program = replace(default_settings(), expiry_policy=policy, expiry_months=months, timezone=zone)
    earned_at = _at(earned, zone).astimezone(UTC)  # as a till would send it

    expires_at = lot_expiry(program, earned_at)

    assert expires_at is not None
    assert last_day(expires_at, program.zone) == date.fromisoformat(last)
    # gone at the local midnight that ends the last day, and not a moment before
    local = expires_at.astimezone(program.zone)
    assert (local.hour, local.minute) == (0, 0)
    assert local.date() == date.fromisoformat(last) + timedelta(days=1)


def test_points_never_expire_under_the_never_policy():
    program = replace(default_settings(), expiry_policy=ExpiryPolicy.NEVER)
    assert lot_expiry(program, START) is None


def test_the_end_of_year_in_auckland_comes_before_the_end_of_year_in_utc():
    program = replace(
        default_settings(),
        expiry_policy=ExpiryPolicy.END_OF_YEAR,
        expiry_months=0,
        timezone="Pacific/Auckland",
    )
    expires_at = lot_expiry(program, datetime(2026, 6, 1, tzinfo=UTC))
    assert expires_at == datetime(2026, 12, 31, 11, 0, tzinfo=UTC)  # midnight NZDT (UTC+13)


# --- the expiry job ---------------------------------------------------------------------------


def _credit(session: Session, member: Member, points: int, clock: FixedClock) -> int:
    return give_points(session, member.id, points, clock.now())


def _redeem(session: Session, member: Member, points: int, clock: FixedClock) -> None:
    ledger.redeem(
        session, member_id=member.id, points=points, reason="test", actor="test", now=clock.now()
    )


def _expiries(session: Session, member: Member) -> list[tuple[int, int]]:
    rows = session.execute(
        select(PointEntry.points, PointEntry.pending_points)
        .where(PointEntry.member_id == member.id, PointEntry.kind == EntryKind.EXPIRE)
        .order_by(PointEntry.id)
    )
    return [(points, pending) for points, pending in rows]


def _consistent(session: Session) -> None:
    session.flush()
    assert ledger.check_ledger(session) == []


# Points earned on START (14 March 2026) last through March 2027 under the default policy.
MARCH_EXPIRY = datetime(2027, 4, 1, tzinfo=UTC)


def test_expired_points_leave_with_one_entry_per_member_naming_the_lots(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    first = _credit(session, member, 100, clock)
    second = _credit(session, member, 40, clock)  # same month: same expiry
    clock.advance(timedelta(days=62))
    _credit(session, member, 50, clock)  # May: lasts through May 2027
    _redeem(session, member, 30, clock)  # from the first lot
    clock.advance(MARCH_EXPIRY - clock.now())

    expire_points(session, clock.now())

    assert ledger.balance(session, member.id) == ledger.Balance(available=50, pending=0)
    assert _expiries(session, member) == [(-110, 0)]
    draws = session.execute(
        select(PointLot.entry_id, LotDraw.points)
        .join(PointLot, PointLot.id == LotDraw.lot_id)
        .join(PointEntry, PointEntry.id == LotDraw.entry_id)
        .where(PointEntry.member_id == member.id, PointEntry.kind == EntryKind.EXPIRE)
    )
    assert sorted(draws.all()) == sorted([(first, 70), (second, 40)])
    _consistent(session)


def test_points_are_kept_until_the_last_day_is_over(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member, 100, clock)
    expire_points(session, MARCH_EXPIRY - timedelta(microseconds=1))
    assert ledger.balance(session, member.id).available == 100
    assert _expiries(session, member) == []


def test_running_the_expiry_twice_expires_nothing_twice(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member, 100, clock)
    clock.advance(MARCH_EXPIRY - clock.now())

    expire_points(session, clock.now())
    _consistent(session)
    clock.advance(timedelta(hours=1))
    expire_points(session, clock.now())

    assert _expiries(session, member) == [(-100, 0)]
    assert ledger.balance(session, member.id).available == 0
    assert members_with_expired_points(session, clock.now()) == 0
    _consistent(session)


def test_spending_takes_the_points_expiring_first_so_fewer_points_expire(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    member, _ = make_member(session, keys, clock)
    _credit(session, member, 100, clock)  # lasts through March 2027
    clock.advance(timedelta(days=62))
    _credit(session, member, 100, clock)  # lasts through May 2027
    _redeem(session, member, 150, clock)

    clock.advance(MARCH_EXPIRY - clock.now())
    expire_points(session, clock.now())
    assert _expiries(session, member) == []
    assert ledger.balance(session, member.id).available == 50

    clock.advance(timedelta(days=61))  # 1 June 2027
    expire_points(session, clock.now())
    assert _expiries(session, member) == [(-50, 0)]
    assert ledger.balance(session, member.id).available == 0
    _consistent(session)


def test_the_expiry_walks_members_in_batches_and_leaves_the_others_alone(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    expiring = [make_member(session, keys, clock)[0] for _ in range(7)]
    for n, member in enumerate(expiring, start=1):
        _credit(session, member, 10 * n, clock)
    clock.advance(timedelta(days=62))
    staying = [make_member(session, keys, clock)[0] for _ in range(2)]
    for member in staying:
        _credit(session, member, 5, clock)
    now = MARCH_EXPIRY + timedelta(days=1)
    to_go = members_with_expired_points(session, now)
    batches: list[int] = []

    done = expire_points(session, now, batch_size=3, on_batch=batches.append)

    assert [ledger.balance(session, m.id).available for m in expiring] == [0] * 7
    assert [ledger.balance(session, m.id).available for m in staying] == [5, 5]
    assert all(size <= 3 for size in batches)
    assert sum(batches) == done.members == to_go >= 7
    assert -done.points >= sum(10 * n for n in range(1, 8))
    _consistent(session)


def test_lots_that_never_expire_are_left_whole(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(session, actor="test", now=clock.now(), expiry_policy="never")
    member, _ = make_member(session, keys, clock)
    _credit(session, member, 100, clock)
    expire_points(session, datetime(2099, 1, 1, tzinfo=UTC))
    assert ledger.balance(session, member.id).available == 100


def test_pending_points_that_expire_before_they_unlock_come_off_pending(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(
        session,
        actor="test",
        now=clock.now(),
        pending_days=60,
        expiry_policy="months_after_earning_month",
        expiry_months=0,
    )
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    _credit(session, member, 5, clock)
    sell(session, till, keys, clock, member=member, lines=[BasketLine("TEA", 1, 1000)])
    assert ledger.balance(session, member.id) == ledger.Balance(available=5, pending=10)

    expire_points(session, datetime(2026, 4, 1, tzinfo=UTC))

    assert ledger.balance(session, member.id) == ledger.Balance(available=0, pending=0)
    assert _expiries(session, member) == [(-5, -10)]
    _consistent(session)


def test_each_policy_sets_the_expiry_of_points_earned_at_the_till(
    session: Session, keys: LookupKeys, clock: FixedClock
):
    update_program(
        session,
        actor="test",
        now=clock.now(),
        expiry_policy="months_after_earning",
        expiry_months=1,
        timezone="Europe/London",
    )
    till = make_till(session, clock)
    member, _ = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, occurred_at=_at("2026-01-31 18:00", "UTC"))
    clock.advance(_at("2026-02-28 23:59", "Europe/London") - clock.now())
    expire_points(session, clock.now())
    assert ledger.balance(session, member.id).available == 10

    clock.advance(timedelta(minutes=1))  # midnight in London: 28 February is over
    expire_points(session, clock.now())
    assert ledger.balance(session, member.id).available == 0
    _consistent(session)


# --- a till redeeming while the expiry runs (PostgreSQL) --------------------------------------


def test_an_expiry_racing_redemptions_never_spends_or_expires_a_point_twice(
    postgres_only: None, engine: Engine, keys: LookupKeys
):
    # Committed, so dated long before what other tests commit: no other member's points expire.
    clock = FixedClock(datetime(2019, 1, 10, tzinfo=UTC))
    with Session(engine, expire_on_commit=False) as session, session.begin():
        member, _ = make_member(session, keys, clock)
        _credit(session, member, 1_000, clock)  # lasts through January 2020
        clock.advance(timedelta(days=62))
        _credit(session, member, 1_000, clock)  # lasts through March 2020
    now = datetime(2020, 2, 1, 1, 0, tzinfo=UTC)
    barrier = threading.Barrier(9)
    outcomes: list[str] = []

    def redeem() -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                with session.begin():
                    ledger.redeem(
                        session,
                        member_id=member.id,
                        points=150,
                        reason="race",
                        actor="test",
                        now=now,
                    )
                outcomes.append("redeemed")
            except NotEnoughPoints:
                outcomes.append("refused")

    def expire() -> None:
        with Session(engine) as session:
            barrier.wait()
            with session.begin():
                expire_points(session, now, batch_size=1)
            outcomes.append("expired")

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    threads.append(threading.Thread(target=expire))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        available = ledger.balance(session, member.id).available
        redeemed = outcomes.count("redeemed")
        expired = -(
            session.scalar(
                select(func.coalesce(func.sum(PointEntry.points), 0)).where(
                    PointEntry.member_id == member.id, PointEntry.kind == EntryKind.EXPIRE
                )
            )
            or 0
        )
        assert outcomes.count("expired") == 1
        assert redeemed + outcomes.count("refused") == 8
        assert available >= 0
        assert available == 2_000 - 150 * redeemed - expired
        assert expired <= 1_000, "only the lot that expired can expire"
        assert ledger.check_ledger(session) == []
