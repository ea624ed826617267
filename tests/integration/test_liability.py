"""The points liability report over a known history, on SQLite and PostgreSQL; and the
`adjust-points` and `liability-report` commands as an operator runs them."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.checkout.returns import ReturnRequest, record_return
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.errors import InvalidInput
from loyalty.ledger import services as ledger
from loyalty.ledger.adjustments import adjust_points
from loyalty.ledger.jobs import expire_points, unlock_points
from loyalty.ledger.models import LotDraw, PointAccount, PointEntry, PointLot
from loyalty.members.models import Member
from loyalty.program import update_program
from loyalty.reports.liability import LiabilityReport, Movements, liability_report
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from tests.cli import assert_clean_error, assert_ok, loyalty
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.factories import Till, make_member, make_till, sell

NEW_YORK = "America/New_York"  # UTC-5 in winter, UTC-4 from 8 March 2026
NOW = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)


def at(text: str) -> FixedClock:
    return FixedClock(datetime.fromisoformat(text).replace(tzinfo=UTC))


@pytest.fixture
def empty_ledger(session: Session) -> Session:
    """The report covers the whole programme, so these tests start from an empty ledger. The
    PostgreSQL race tests commit their sales to the shared database for real; their rows are
    deleted here inside this test's transaction, which is rolled back like any other."""
    for table in (LotDraw, PointLot, PointEntry, PointAccount):
        session.execute(delete(table))
    return session


def give_back(session: Session, till: Till, sale: str, ret: str, sku: str, when: FixedClock):
    record_return(
        session,
        terminal=till.terminal,
        sale_external_id=sale,
        request=ReturnRequest(ret, [(sku, 1)]),
        now=when.now(),
    )


def adjust(session: Session, member: Member, points: int, when: FixedClock) -> None:
    adjust_points(
        session,
        member_id=member.id,
        points=points,
        reason="by hand",
        actor="staff:1:Grace",
        now=when.now(),
    )


@dataclass
class History:
    ada: Member
    ben: Member
    cleo: Member


@pytest.fixture
def history(empty_ledger: Session, keys: LookupKeys) -> History:
    """Three members' history, in New York. Times are UTC; several fall in one month in
    New York and in the next in UTC (marked NY). Points: 1 per 1.00, 100 points = 1.00 EUR,
    expiring at the end of the twelfth month after the month earned.

    Ada: Jan earns 120 (s1) and 80 (s2, NY); Feb earns 29 and redeems 50 (s3), returns one of
    two items of s1 (-60, NY); Mar returns s3 in full (-29 earned, +50 redeemed back), gets +50
    and -20 (NY) by hand. Balance 170.
    Ben: Jan earns 10, spends them (earning 4); Feb returns the first sale: owes 6.
    Cleo: earned 15 in February 2025, which the expiry job takes in March 2026. Balance 0.
    """
    session = empty_ledger
    start = at("2025-01-01T12:00:00")
    update_program(session, actor="test", now=start.now(), timezone=NEW_YORK)
    till = make_till(session, start)
    ada, _ = make_member(session, keys, start)
    ben, _ = make_member(session, keys, start)
    cleo, _ = make_member(session, keys, start)

    def buy(member: Member, when: str, sale: str, line: BasketLine, redeem: int = 0) -> None:
        sell(
            session,
            till,
            keys,
            at(when),
            member=member,
            external_id=sale,
            lines=[line],
            redeem=redeem,
        )

    buy(cleo, "2025-02-10T12:00:00", "c1", BasketLine("SOAP", 1, 1500))
    buy(ada, "2026-01-10T15:00:00", "s1", BasketLine("TEA", 2, 6000))
    buy(ben, "2026-01-12T12:00:00", "b1", BasketLine("PEN", 1, 1000))
    buy(ben, "2026-01-20T12:00:00", "b2", BasketLine("PAD", 1, 500), redeem=10)
    buy(ada, "2026-02-01T03:00:00", "s2", BasketLine("JAM", 1, 8000))  # NY: 31 Jan 22:00
    give_back(session, till, "b1", "rb1", "PEN", at("2026-02-10T12:00:00"))
    buy(ada, "2026-02-15T12:00:00", "s3", BasketLine("OIL", 1, 3000), redeem=50)
    give_back(session, till, "s1", "r1", "TEA", at("2026-03-01T04:30:00"))  # NY: 28 Feb 23:30
    give_back(session, till, "s3", "r3", "OIL", at("2026-03-05T12:00:00"))
    adjust(session, ada, 50, at("2026-03-10T12:00:00"))
    expire_points(session, at("2026-03-20T12:00:00").now())  # Cleo's lot ended 28 Feb
    adjust(session, ada, -20, at("2026-04-01T02:00:00"))  # NY (summer time): 31 Mar 22:00
    session.flush()
    assert ledger.balance(session, ada.id).available == 170
    assert ledger.balance(session, ben.id).available == -6
    assert ledger.balance(session, cleo.id).available == 0
    return History(ada, ben, cleo)


def report(session: Session, **window: str) -> LiabilityReport:
    return liability_report(session, now=NOW, **window)


def by_month(result: LiabilityReport) -> dict[str, Movements]:
    return {m.month: m for m in result.months}


def test_each_month_counts_what_happened_in_it_in_the_programs_time_zone(session, history):
    months = by_month(report(session, from_month="2026-01", to_month="2026-04"))

    assert list(months) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert months["2026-01"] == Movements(
        month="2026-01", earned=214, redeemed=10, expired=0, reversed=0, net=204
    )
    assert months["2026-02"] == Movements(
        month="2026-02", earned=29, redeemed=50, expired=0, reversed=70, net=-91
    )
    assert months["2026-03"] == Movements(
        month="2026-03",
        earned=50,  # the points added by hand
        redeemed=-50,  # a redemption given back by a return
        expired=15,
        reversed=29,
        adjusted_added=50,
        adjusted_removed=20,
        net=36,
    )
    assert months["2026-04"] == Movements(month="2026-04")


def test_the_same_history_falls_into_other_months_in_utc(session, history):
    update_program(session, actor="test", now=NOW, timezone="UTC")

    months = by_month(report(session, from_month="2026-01", to_month="2026-04"))

    assert (months["2026-01"].earned, months["2026-02"].earned) == (134, 109)
    assert (months["2026-02"].reversed, months["2026-03"].reversed) == (10, 89)
    assert months["2026-03"].adjusted_removed == 0
    assert months["2026-04"].adjusted_removed == 20


@pytest.mark.parametrize(
    ("zone", "month"),
    [
        ("UTC", "2026-01"),
        ("Asia/Kolkata", "2026-02"),  # UTC+05:30: already 1 February, 00:15
        ("Asia/Kathmandu", "2026-02"),  # UTC+05:45: 00:30
        ("America/St_Johns", "2026-01"),  # UTC-03:30
    ],
)
def test_zones_with_part_hour_offsets_put_an_entry_in_their_own_month(
    session, empty_ledger, keys, zone, month
):
    when = at("2026-01-31T18:45:00")
    update_program(session, actor="test", now=when.now(), timezone=zone)
    member, _ = make_member(session, keys, when)
    adjust(session, member, 7, when)

    months = by_month(report(session, from_month="2026-01", to_month="2026-02"))

    assert months[month].earned == 7
    assert sum(m.earned for m in months.values()) == 7


def test_outstanding_points_count_only_positive_balances_and_debts_are_shown_apart(
    session, history
):
    result = report(session)

    assert result.outstanding_points == 170
    assert (result.available_points, result.pending_points) == (170, 0)
    assert result.members_with_points == 1
    assert (result.points_owed, result.members_owing) == (6, 1)


def test_the_value_is_in_the_programs_currency_and_rounded_down(session, history):
    assert (report(session).value_minor, report(session).value_text) == (170, "1.70 EUR")

    update_program(session, actor="test", now=NOW, redeem_points=300, redeem_value_minor=200)
    result = report(session)

    assert result.currency == "EUR"
    assert result.value_minor == 113  # 170 x 200 / 300 = 113.33
    assert result.value_text == "1.13 EUR"


def test_breakage_is_expired_over_earned_for_the_window_and_for_all_time(session, history):
    march = report(session, from_month="2026-03", to_month="2026-03")
    year = report(session)

    assert (march.breakage_window.expired, march.breakage_window.earned) == (15, 50)
    assert march.breakage_window.ratio == Decimal("0.3000")
    assert march.breakage_window.basis_points == 3000
    assert (march.breakage_overall.expired, march.breakage_overall.earned) == (15, 308)
    assert march.breakage_overall.ratio == Decimal("0.0487")  # 15 / 308 = 0.04870...
    assert march.breakage_overall.basis_points == 487
    assert (year.breakage_window.expired, year.breakage_window.earned) == (15, 293)
    assert year.breakage_window.ratio == Decimal("0.0512")  # 15 / 293 = 0.05119...
    assert year.breakage_window.basis_points == 512
    assert year.breakage_overall == march.breakage_overall


def test_the_default_window_is_the_last_twelve_months_with_quiet_months_as_zeros(session, history):
    result = report(session)

    assert (result.from_month, result.to_month) == ("2025-05", "2026-04")
    assert [m.month for m in result.months][:3] == ["2025-05", "2025-06", "2025-07"]
    assert len(result.months) == 12
    assert result.months[0] == Movements(month="2025-05")
    assert result.window.earned == 214 + 29 + 50


def test_the_months_net_changes_add_up_to_the_balances_members_hold_and_owe(session, history):
    result = report(session, from_month="2025-01", to_month="2026-04")

    assert result.window.net == result.outstanding_points - result.points_owed == 164
    assert all(m.other == 0 for m in result.months)


def test_pending_points_are_outstanding_and_earned_once_not_again_when_they_unlock(
    session, empty_ledger, keys
):
    when = at("2026-03-02T12:00:00")
    update_program(session, actor="test", now=when.now(), pending_days=14)
    member, _ = make_member(session, keys, when)
    sell(
        session,
        make_till(session, when),
        keys,
        when,
        member=member,
        lines=[BasketLine("TEA", 1, 3000)],
    )

    waiting = report(session, from_month="2026-03", to_month="2026-03")
    unlock_points(session, at("2026-03-20T12:00:00").now())
    unlocked = report(session, from_month="2026-03", to_month="2026-03")

    assert (waiting.available_points, waiting.pending_points) == (0, 30)
    assert (unlocked.available_points, unlocked.pending_points) == (30, 0)
    assert waiting.outstanding_points == unlocked.outstanding_points == 30
    assert waiting.value_minor == 30
    assert waiting.months == unlocked.months == [Movements(month="2026-03", earned=30, net=30)]


def test_with_nothing_earned_breakage_is_none_not_a_division_by_zero(session, empty_ledger):
    result = report(session)

    assert result.outstanding_points == 0
    assert result.breakage_window.ratio is None
    assert result.breakage_overall.basis_points is None


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ({"from_month": "2026-13"}, "from"),
        ({"to_month": "26-01"}, "to"),
        ({"from_month": "2026-05", "to_month": "2026-04"}, "from"),
        ({"from_month": "2010-01", "to_month": "2026-04"}, "from"),  # 196 months
        ({"from_month": "0001-01"}, "from"),
    ],
)
def test_a_window_that_is_malformed_backwards_or_too_long_is_refused(session, window, field):
    with pytest.raises(InvalidInput) as refused:
        report(session, **window)

    assert refused.value.field == field


# --- the commands, against a database they can commit to --------------------------------------


@pytest.fixture(scope="module")
def cli_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's own database per backend, migrated and seeded by the commands."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('reports-cli') / 'loyalty.sqlite3'}"
    else:
        url = fresh_postgres_database("reports_cli")
    try:
        assert_ok(loyalty(url, "migrate"))
        assert_ok(loyalty(url, "seed-demo"))
        yield url
    finally:
        if backend == "postgresql":
            drop_postgres_database(url)


@pytest.fixture(scope="module")
def cli_db(cli_url: str) -> Iterator[Engine]:
    engine = make_engine(cli_url)
    yield engine
    engine.dispose()


def a_demo_member(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        member_id = session.scalars(select(Member.id).order_by(Member.id)).first()
        return member_id, ledger.balance(session, member_id).available


def test_adjust_points_prints_the_balance_before_and_after_and_is_audited(cli_url, cli_db):
    member_id, available = a_demo_member(cli_db)

    added = loyalty(cli_url, "adjust-points", str(member_id), "25", "--reason", "goodwill")
    removed = loyalty(cli_url, "adjust-points", str(member_id), "-10", "--reason", "typo fix")

    assert_ok(added)
    assert f"member {member_id}: +25 points (goodwill)" in added.stdout
    assert f"before: available {available:,}, pending 0" in added.stdout
    assert f"after:  available {available + 25:,}, pending 0" in added.stdout
    assert_ok(removed)
    assert f"after:  available {available + 15:,}, pending 0" in removed.stdout
    with Session(cli_db) as session:
        audit = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "points.adjust")
            .order_by(AuditEntry.id.desc())
        ).first()
    assert audit.actor.startswith("cli:")
    assert (audit.details["points"], audit.details["reason"]) == (-10, "typo fix")


def test_adjust_points_refuses_a_debt_an_unknown_member_and_no_reason_cleanly(cli_url, cli_db):
    member_id, available = a_demo_member(cli_db)

    overdraw = loyalty(
        cli_url, "adjust-points", str(member_id), str(-(available + 1)), "--reason", "too much"
    )
    unknown = loyalty(cli_url, "adjust-points", "999999", "5", "--reason", "nobody")
    blank = loyalty(cli_url, "adjust-points", str(member_id), "5", "--reason", " ")
    missing = loyalty(cli_url, "adjust-points", str(member_id), "5")

    assert_clean_error(overdraw, "would leave a debt")
    assert_clean_error(unknown, "no member has id 999999")
    assert_clean_error(blank, "a reason has 3 to 200 characters")
    assert missing.exit_code == 2
    assert "--reason" in missing.stderr
    assert a_demo_member(cli_db)[1] == available


def test_the_liability_report_prints_a_table_and_writes_the_months_to_a_csv(
    cli_url, tmp_path: Path
):
    out = tmp_path / "liability.csv"

    result = loyalty(cli_url, "liability-report", "--csv", str(out))

    assert_ok(result)
    assert re.search(r"outstanding\s+[\d,]+ points", result.stdout)
    assert re.search(r"value\s+[\d,]+\.\d\d EUR \(100 points = 1\.00 EUR\)", result.stdout)
    assert "points owed   0, by 0 members" in result.stdout
    assert re.search(
        r"^month\s+earned\s+redeemed\s+expired\s+reversed", result.stdout, re.MULTILINE
    )
    assert re.search(r"^total\s", result.stdout, re.MULTILINE)
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "month",
        "earned",
        "redeemed",
        "expired",
        "reversed",
        "adjusted_added",
        "adjusted_removed",
        "other",
        "net",
    ]
    assert len(rows) == 1 + 12 + 1
    assert rows[-1][0] == "total"
    assert sum(int(row[1]) for row in rows[1:-1]) == int(rows[-1][1]) > 0  # demo sales earned


def test_the_liability_report_takes_a_window_and_refuses_a_bad_one_cleanly(cli_url, tmp_path):
    ok = loyalty(cli_url, "liability-report", "--from", "2025-01", "--to", "2025-03")
    bad = loyalty(cli_url, "liability-report", "--from", "2025-1")
    backwards = loyalty(cli_url, "liability-report", "--from", "2025-04", "--to", "2025-03")
    unwritable = loyalty(cli_url, "liability-report", "--csv", str(tmp_path / "no" / "x.csv"))

    assert_ok(ok)
    assert re.findall(r"^(20\d\d-\d\d) ", ok.stdout, re.MULTILINE) == [
        "2025-01",
        "2025-02",
        "2025-03",
    ]
    assert_clean_error(bad, "a month is written YYYY-MM")
    assert_clean_error(backwards, "the window starts (2025-04) after it ends (2025-03)")
    assert_clean_error(unwritable, "cannot write")
