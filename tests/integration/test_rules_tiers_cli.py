"""`loyalty rules …` and `loyalty tiers …`, run as an operator runs them, on SQLite and PostgreSQL.

The commands commit, so this module gets a database of its own per backend, migrated by
`loyalty migrate` (as tests/integration/test_cli.py does). Rules made here name a store of their
own, so a rule of one test never changes the points of another test's sales.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.checkout.results import SaleResult
from loyalty.checkout.returns import void_sale
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.members.models import Member
from loyalty.results import Outcome
from loyalty.rules.models import EarnRule
from loyalty.rules.pricing import BasketLine
from loyalty.settings import LookupKeys
from loyalty.stores.models import Terminal
from loyalty.stores.services import create_terminal, find_store
from loyalty.tiers.models import MemberTier, Tier
from loyalty.tiers.services import current_tier
from tests.cli import assert_clean_error, assert_ok, loyalty, migrated_database
from tests.conftest import CARD_KEY, unique
from tests.factories import Till, make_member, sell

KEYS = LookupKeys(card_key=CARD_KEY, phone_region="GB")


@pytest.fixture(scope="module")
def url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(backend, tmp_path_factory, "rules_cli") as database_url:
        yield database_url


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(url: str) -> str:
    """A store of the test's own, for its rules to name."""
    code = unique("ST")
    assert_ok(loyalty(url, "create-store", code, "Rules test store"))
    return code


def rule_file(tmp_path: Path, content: Any) -> str:
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def audit(db: Engine, action: str, subject_id: object) -> list[AuditEntry]:
    with Session(db) as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.subject_id == str(subject_id))
                .order_by(AuditEntry.id)
            )
        )


def rules_named(db: Engine, *names: str) -> dict[str, EarnRule]:
    with Session(db) as session:
        found = session.scalars(select(EarnRule).where(EarnRule.name.in_(names)))
        return {rule.name: rule for rule in found}


def table_rows(output: str) -> list[list[str]]:
    """The rows of a printed table, split on runs of two or more spaces."""
    lines = output.splitlines()
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines[2:]]


def new_member(db: Engine, now: datetime) -> int:
    with Session(db) as session:
        member, _card = make_member(session, KEYS, FixedClock(now))
        session.commit()
        return member.id


def buy(
    db: Engine, store_code: str, member_id: int, now: datetime, amount: int, *, void: bool = False
) -> Outcome[SaleResult]:
    """A sale of `amount` minor units at a till of the store (voided at once if asked)."""
    with Session(db) as session:
        store = find_store(session, store_code)
        terminal = session.scalars(select(Terminal).where(Terminal.store_id == store.id)).first()
        if terminal is None:
            terminal, _key = create_terminal(session, store=store, name="T", actor="test", now=now)
        till = Till(store, terminal, "")
        recorded = sell(
            session,
            till,
            KEYS,
            FixedClock(now),
            member=session.get(Member, member_id),
            lines=[BasketLine("TEA", 1, amount, "drinks")],
            external_id=unique("sale"),
        )
        if void:
            void_sale(
                session, terminal=terminal, sale_external_id=recorded.result.external_id, now=now
            )
        session.commit()
        return recorded


def earned(recorded: Outcome[SaleResult]) -> int:
    return int(recorded.result.points.earned)


# --- rules ------------------------------------------------------------------------------------


def test_rules_added_from_one_file_are_listed_in_evaluation_order_and_audited(
    url: str, db: Engine, store: str, tmp_path: Path
) -> None:
    late, early, capped = unique("late"), unique("early"), unique("capped")
    path = rule_file(
        tmp_path,
        [
            {
                "name": late,
                "kind": "visit",
                "params": {"points": 5},
                "priority": 300,
                "stores": [store],
            },
            {
                "name": early,
                "kind": "spend",
                "params": {"points": 2, "per_minor": 100},
                "priority": 1,
                "stores": [store],
            },
            {
                "name": capped,
                "kind": "promotion",
                "priority": 300,
                "stackable": False,
                "params": {"mode": "add", "points": 50, "weekdays": [5, 6]},
                "starts_at": "2030-06-01T00:00:00+00:00",
                "ends_at": "2030-07-01T00:00:00+00:00",
                "cap_points": 500,
                "cap_period": "month",
                "stores": [store],
            },
        ],
    )

    added = loyalty(url, "rules", "add", path)
    listed = loyalty(url, "rules", "list")

    assert_ok(added)
    ids = {name: rule.id for name, rule in rules_named(db, late, early, capped).items()}
    for name in (late, early, capped):
        assert f"rule {ids[name]} created: {name}" in added.stdout
    assert_ok(listed)
    assert listed.stdout.splitlines()[0].split() == [
        "id",
        "priority",
        "name",
        "kind",
        "stacks",
        "window",
        "cap",
    ]
    ours = [row for row in table_rows(listed.stdout) if row[2:3] in ([late], [early], [capped])]
    assert ours == [
        [str(ids[early]), "1", early, "spend", "yes", "always", "-"],
        [str(ids[late]), "300", late, "visit", "yes", "always", "-"],  # same priority: id first
        [
            str(ids[capped]),
            "300",
            capped,
            "promotion",
            "no",
            "2030-06-01 00:00 to 2030-07-01 00:00",
            "500/month",
        ],
    ]
    for name in (late, early, capped):
        (entry,) = audit(db, "rule.create", ids[name])
        assert entry.actor.startswith("cli:")
        assert entry.details["after"]["name"] == name


def test_a_bad_rule_file_names_each_field_exits_1_and_creates_no_rule_of_the_file(
    url: str, db: Engine, store: str, tmp_path: Path
) -> None:
    good = unique("good")
    path = rule_file(
        tmp_path,
        [
            {"name": good, "kind": "visit", "params": {"points": 5}, "stores": [store]},
            {"name": "no rate", "kind": "spend", "params": {"points": 0}},
            {
                "name": "backwards",
                "kind": "visit",
                "params": {"points": 5},
                "starts_at": "2030-02-01T00:00:00+00:00",
                "ends_at": "2030-01-01T00:00:00+00:00",
            },
            {"name": "cap alone", "kind": "visit", "params": {"points": 5}, "cap_points": 9},
            {
                "name": "typo",
                "kind": "product",
                "params": {"sku": ["A"], "mode": "add", "points_per_unit": 3},
            },
            {"name": "where", "kind": "visit", "params": {"points": 5}, "stores": ["NO-SUCH"]},
            {"name": "what", "kind": "lottery"},
        ],
    )
    counted = text(
        "SELECT (SELECT count(*) FROM earn_rules),"
        " (SELECT count(*) FROM audit_log WHERE action = 'rule.create')"
    )
    with db.connect() as conn:
        before = conn.execute(counted).one()

    result = loyalty(url, "rules", "add", path)

    assert_clean_error(
        result,
        "rule 2 of 7 (no rate)",
        "params.points: Must be greater than or equal to 1",
        "params.per_minor: Missing data for required field.",
        "rule 3 of 7 (backwards)",
        "ends_at: the rule ends before it starts",
        "cap_period: a cap needs both cap_points and cap_period",
        "params.sku: Unknown field.",
        "stores: unknown stores: NO-SUCH",
        "kind: Must be one of: spend",
        f"6 of 7 refused: no rule of {path} was created",
    )
    assert good not in result.output
    with db.connect() as conn:
        assert conn.execute(counted).one() == before  # no rule, and no audit of one
    assert rules_named(db, good) == {}


def test_a_file_that_is_not_json_is_refused_in_one_line(url: str, tmp_path: Path) -> None:
    path = tmp_path / "rule.json"
    path.write_text('{"name": "x", "kind": ', encoding="utf-8")

    result = loyalty(url, "rules", "add", str(path))

    assert_clean_error(result, f"{path} is not valid JSON")


def test_a_rule_changed_from_a_file_is_validated_whole_and_audited_with_before_and_after(
    url: str, db: Engine, store: str, tmp_path: Path
) -> None:
    name = unique("rate")
    assert_ok(
        loyalty(
            url,
            "rules",
            "add",
            rule_file(
                tmp_path,
                {
                    "name": name,
                    "kind": "spend",
                    "params": {"points": 2, "per_minor": 100},
                    "stores": [store],
                },
            ),
        )
    )
    rule_id = rules_named(db, name)[name].id

    bad = loyalty(
        url, "rules", "change", str(rule_id), rule_file(tmp_path, {"params": {"points": 3}})
    )
    good = loyalty(
        url,
        "rules",
        "change",
        str(rule_id),
        rule_file(tmp_path, {"params": {"points": 3, "per_minor": 50}, "priority": 7}),
    )

    assert_clean_error(
        bad, f"rule {rule_id}:", "params.per_minor: Missing data for required field."
    )
    assert_ok(good)
    assert f"rule {rule_id} changed: params, priority" in good.stdout
    rule = rules_named(db, name)[name]
    assert (rule.params["points"], rule.params["per_minor"], rule.priority) == (3, 50, 7)
    (entry,) = audit(db, "rule.update", rule_id)
    assert entry.actor.startswith("cli:")
    assert entry.details["before"]["params"]["per_minor"] == 100
    assert entry.details["after"]["params"]["per_minor"] == 50


def test_an_archived_rule_stops_earning_leaves_the_list_and_cannot_change(
    url: str, db: Engine, store: str, now: datetime, tmp_path: Path
) -> None:
    name = unique("x10")
    assert_ok(
        loyalty(
            url,
            "rules",
            "add",
            rule_file(
                tmp_path,
                {
                    "name": name,
                    "kind": "spend",
                    "params": {"points": 10, "per_minor": 100},
                    "stores": [store],
                },
            ),
        )
    )
    rule_id = rules_named(db, name)[name].id
    member = new_member(db, now)
    assert earned(buy(db, store, member, now, 1000)) == 100  # 10.00 at x10

    archived = loyalty(url, "rules", "archive", str(rule_id))
    again = loyalty(url, "rules", "archive", str(rule_id))

    assert_ok(archived)
    assert f"rule {rule_id} ({name}) archived" in archived.stdout
    assert "was already archived" in again.stdout
    assert earned(buy(db, store, member, now, 1000)) == 10  # the program's own 1 per 1.00
    assert name not in loyalty(url, "rules", "list").stdout
    listed_all = loyalty(url, "rules", "list", "--all")
    (row,) = [row for row in table_rows(listed_all.stdout) if name in row]
    assert row[-1] == now.strftime("%Y-%m-%d %H:%M")  # the archived column
    assert_clean_error(
        loyalty(url, "rules", "change", str(rule_id), rule_file(tmp_path, {"priority": 1})),
        "an archived rule cannot change",
    )
    assert_clean_error(loyalty(url, "rules", "archive", "999999"), "no rule has id 999999")
    (entry,) = audit(db, "rule.archive", rule_id)
    assert entry.actor.startswith("cli:")


# --- tiers ------------------------------------------------------------------------------------

_ranks = iter(range(100, 900, 10))


def test_tiers_are_added_listed_and_changed_and_every_change_is_audited(
    url: str, db: Engine
) -> None:
    code, rank = unique("T").upper(), next(_ranks)

    added = loyalty(
        url,
        "tiers",
        "add",
        code,
        "Silver",
        "--rank",
        str(rank),
        "--threshold",
        "50000",
        "--multiplier",
        "125",
        "--perks",
        "free coffee",
    )
    same_rank = loyalty(
        url, "tiers", "add", code + "B", "Other", "--rank", str(rank), "--threshold", "1"
    )
    bad_code = loyalty(
        url, "tiers", "add", "NO SPACES", "x", "--rank", str(rank + 1), "--threshold", "1"
    )
    changed = loyalty(url, "tiers", "change", code, "--threshold", "40000", "--name", "Argent")
    listed = loyalty(url, "tiers", "list")

    assert_ok(added)
    assert f"tier {code} (Silver) added: rank {rank}, threshold 50,000, earns x1.25" in added.stdout
    assert_clean_error(same_rank, f"tier {code} already has this rank")
    assert_clean_error(bad_code, "code: 1 to 24 letters, digits, - or _")
    assert_ok(changed)
    assert f"tier {code} changed: name, threshold" in changed.stdout
    assert [str(rank), code, "Argent", "40,000", "x1.25", "free coffee"] in table_rows(
        listed.stdout
    )
    assert "thresholds: spend in minor units over 12 months" in listed.stdout
    with Session(db) as session:
        tier = session.scalars(select(Tier).where(Tier.code == code)).one()
        codes = set(session.scalars(select(Tier.code)))
    assert code + "B" not in codes
    (created,) = audit(db, "tier.create", tier.id)
    (update,) = audit(db, "tier.update", tier.id)
    assert created.actor.startswith("cli:")
    assert update.actor.startswith("cli:")
    assert update.details["before"] == {"name": "Silver", "threshold": 50000}
    assert update.details["after"] == {"name": "Argent", "threshold": 40000}


def test_changing_nothing_or_an_unknown_tier_is_refused(url: str) -> None:
    nothing = loyalty(url, "tiers", "change", "GOLD")
    unknown = loyalty(url, "tiers", "change", "NO-SUCH", "--name", "x")

    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr
    assert_clean_error(unknown, "no tier has code 'NO-SUCH'")


def test_the_review_upgrades_starts_grace_downgrades_and_ends_floors(
    url: str, db: Engine, store: str, now: datetime
) -> None:
    climber = new_member(db, now)
    buy(db, store, climber, now, 9_100_000)
    assert_ok(loyalty(url, "tiers", "review"))  # whatever the other tests left, settled
    top = unique("TOP").upper()
    assert_ok(loyalty(url, "tiers", "add", top, "Top", "--rank", "999", "--threshold", "9000000"))
    in_grace, down = new_member(db, now), new_member(db, now)
    for member in (in_grace, down):
        sale = buy(db, store, member, now, 9_500_000, void=True)
        assert sale.result.tier.code == top  # upgraded at the sale, kept once it is voided
        assert sale.result.tier_changed is True
    floored = new_member(db, now)
    with db.begin() as conn:
        # as if a review had found them below their tier 31 days ago, beyond the 30 of grace
        conn.execute(
            text("UPDATE member_tiers SET below_since = :at WHERE member_id = :id"),
            {"at": now - timedelta(days=31), "id": down},
        )
    with Session(db) as session:
        tier_id = session.scalars(select(Tier.id).where(Tier.code == top)).one()
        session.add(
            MemberTier(
                member_id=floored,
                since=now - timedelta(days=60),
                floor_tier_id=tier_id,
                floor_until=now - timedelta(days=1),
            )
        )
        session.commit()

    result = loyalty(url, "tiers", "review")

    assert_ok(result)
    assert result.stdout.splitlines() == [
        "upgraded: 1",
        "grace started: 1",
        "downgraded: 1",
        "floors ended: 1",
    ]
    with Session(db) as session:
        assert current_tier(session, climber, now).code == top
        assert current_tier(session, in_grace, now).code == top
        assert session.get(MemberTier, in_grace).below_since is not None
        downgraded = current_tier(session, down, now)
        assert downgraded is None or downgraded.code != top
        assert current_tier(session, floored, now) is None
    assert_ok(loyalty(url, "tiers", "change", top, "--threshold", "1000000000000"))  # away


def test_a_floor_lasts_to_the_end_of_the_given_day_in_the_programs_zone_and_is_audited(
    url: str, db: Engine, now: datetime
) -> None:
    code = unique("VIP").upper()
    assert_ok(
        loyalty(
            url,
            "tiers",
            "add",
            code,
            "VIP",
            "--rank",
            str(next(_ranks)),
            "--threshold",
            "10000000000",
        )
    )
    member = new_member(db, now)
    day = date(now.year + 2, 7, 31)  # summer: London is UTC+1
    with db.begin() as conn:
        conn.execute(text("UPDATE program SET timezone = 'Europe/London'"))
    try:
        result = loyalty(url, "tiers", "floor", str(member), code, "--until", day.isoformat())
    finally:
        with db.begin() as conn:
            conn.execute(text("UPDATE program SET timezone = 'UTC'"))

    assert_ok(result)
    assert f"member {member}: at least {code} through {day} (Europe/London)" in result.stdout
    assert f"tier now: {code} (VIP)" in result.stdout
    end_of_day = datetime.combine(day + timedelta(days=1), time(), ZoneInfo("Europe/London"))
    assert end_of_day.astimezone(UTC) == datetime(day.year, 7, 31, 23, 0, tzinfo=UTC)
    with Session(db) as session:
        assert session.get(MemberTier, member).floor_until == end_of_day
        assert current_tier(session, member, end_of_day - timedelta(seconds=1)).code == code
        assert current_tier(session, member, end_of_day) is None
    (entry,) = audit(db, "tier.floor", member)
    assert entry.actor.startswith("cli:")
    assert entry.details["tier"] == code


def test_a_floor_can_be_ended_from_the_command_line(url: str, db: Engine, now: datetime) -> None:
    code = unique("FLR").upper()
    threshold = "10000000000"
    assert_ok(
        loyalty(
            url, "tiers", "add", code, "F", "--rank", str(next(_ranks)), "--threshold", threshold
        )
    )
    member = new_member(db, now)
    assert_ok(loyalty(url, "tiers", "floor", str(member), code))

    result = loyalty(url, "tiers", "unfloor", str(member))

    assert_ok(result)
    assert f"member {member}: no floor" in result.stdout
    with Session(db) as session:
        assert current_tier(session, member, now) is None
    (entry,) = audit(db, "tier.floor_remove", member)
    assert entry.actor.startswith("cli:")
    assert_clean_error(loyalty(url, "tiers", "unfloor", "999999999"), "no member")


def test_a_floor_for_an_unknown_member_or_tier_or_in_the_past_is_refused(
    url: str, db: Engine, now: datetime
) -> None:
    member = new_member(db, now)
    with Session(db) as session:
        code = session.scalars(select(Tier.code).limit(1)).one()
        floors = session.scalar(
            select(func.count())
            .select_from(MemberTier)
            .where(MemberTier.floor_tier_id.is_not(None))
        )

    assert_clean_error(
        loyalty(url, "tiers", "floor", "99999999", code), "no member has id 99999999"
    )
    assert_clean_error(
        loyalty(url, "tiers", "floor", str(member), "NO-SUCH"), "no tier has code 'NO-SUCH'"
    )
    assert_clean_error(
        loyalty(url, "tiers", "floor", str(member), code, "--until", "2020-01-01"),
        "the end date is in the past",
    )
    with Session(db) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(MemberTier)
                .where(MemberTier.floor_tier_id.is_not(None))
            )
            == floors
        )
