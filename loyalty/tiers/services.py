"""Tiers: what status buys, and where each member stands.

- Qualification: what the member paid (spend, minor units) or the points their sales earned,
  net of returns, over a rolling window (program.tier_window_months, 12 by default).
- Upgrades happen at the sale that crosses a threshold (the sale's response says so).
- Downgrades happen only at a review (`review_tiers`, run periodically), and only once the
  member has been below their tier for the grace period (program.tier_grace_days). A return that
  takes a member below a threshold therefore changes nothing until a review finds it, and the
  grace period then gives them time to buy again; tiers never bounce at the till.
- A tier given by staff is a floor until its end date: the member never sits below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.clock import add_months
from loyalty.db import UPSERT_INSERT, UtcDateTime
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.members.services import get_member
from loyalty.program import ProgramSettings, TierBasis, get_program, new_config_version
from loyalty.sales.models import Sale, SaleStatus
from loyalty.tiers.models import MemberTier, Tier, TierView
from loyalty.versioned import VersionedCache

_member_tiers = cast("Table", MemberTier.__table__)
_tiers = cast("Table", Tier.__table__)
# The review's qualifying values, summed once per run and read by each of its statements:
# a temporary table lives in the review's own connection and transaction only.
_review_values = Table(
    "tier_review_values",
    MetaData(),
    Column("member_id", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


def tier_view(tier: Tier) -> TierView:
    return TierView(
        tier.code, tier.name, tier.rank, tier.threshold, tier.earn_multiplier_percent, tier.perks
    )


def _view(tier: Tier | None) -> TierView | None:
    return None if tier is None else tier_view(tier)


def all_tiers(session: Session) -> list[Tier]:
    return list(session.scalars(select(Tier).order_by(Tier.rank)))


def _validate(code: str, name: str, rank: int, threshold: int, multiplier: int) -> None:
    errors = {}
    if not (1 <= len(code) <= 24 and code.replace("-", "").replace("_", "").isalnum()):  # noqa: PLR2004
        errors["code"] = ["1 to 24 letters, digits, - or _"]
    if not 1 <= len(name) <= 80:  # noqa: PLR2004
        errors["name"] = ["1 to 80 characters"]
    if not 0 <= rank <= 1000:  # noqa: PLR2004
        errors["rank"] = ["from 0 to 1000"]
    if not 0 <= threshold <= 10**12:
        errors["threshold"] = ["from 0 to 10^12"]
    if not 100 <= multiplier <= 10_000:  # noqa: PLR2004
        errors["earn_multiplier_percent"] = ["from 100 (x1) to 10000 (x100)"]
    if errors:
        raise InvalidInput("the tier has invalid fields: see errors", errors=errors)


def create_tier(
    session: Session,
    *,
    code: str,
    name: str,
    rank: int,
    threshold: int,
    earn_multiplier_percent: int = 100,
    perks: str = "",
    actor: str,
    now: datetime,
) -> Tier:
    _validate(code, name, rank, threshold, earn_multiplier_percent)
    clash = session.scalars(select(Tier).where((Tier.code == code) | (Tier.rank == rank))).first()
    if clash is not None:
        field = "code" if clash.code == code else "rank"
        raise Conflict(f"tier {clash.code} already has this {field}", field=field)
    tier = Tier(
        code=code,
        name=name,
        rank=rank,
        threshold=threshold,
        earn_multiplier_percent=earn_multiplier_percent,
        perks=perks,
        created_at=now,
        updated_at=now,
    )
    session.add(tier)
    session.flush()
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="tier.create",
        subject_type="tier",
        subject_id=tier.id,
        now=now,
        code=code,
        rank=rank,
        threshold=threshold,
        earn_multiplier_percent=earn_multiplier_percent,
    )
    return tier


def get_tier(session: Session, code: str) -> Tier:
    tier = session.scalars(select(Tier).where(Tier.code == code)).first()
    if tier is None:
        raise NotFound(f"no tier has code {code!r}", field="tier")
    return tier


def update_tier(
    session: Session, code: str, changes: dict[str, Any], *, actor: str, now: datetime
) -> Tier:
    """Change a tier's name, threshold, multiplier or perks; members move at the next sale or
    review, never retroactively."""
    tier = get_tier(session, code)
    if not changes:
        raise InvalidInput("name at least one field to change", field="_body")
    allowed = {"name", "threshold", "earn_multiplier_percent", "perks"}
    if changes.keys() - allowed:
        raise InvalidInput(f"a tier's {', '.join(sorted(changes.keys() - allowed))} cannot change")
    before = {key: getattr(tier, key) for key in changes}
    merged = {key: getattr(tier, key) for key in allowed} | changes
    _validate(
        tier.code, merged["name"], tier.rank, merged["threshold"], merged["earn_multiplier_percent"]
    )
    for key, value in changes.items():
        setattr(tier, key, value)
    tier.updated_at = now
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="tier.update",
        subject_type="tier",
        subject_id=tier.id,
        now=now,
        before=before,
        after=changes,
    )
    return tier


LAST_DAY_EVERY_MONTH_HAS = 28


def window_start(program: ProgramSettings, now: datetime) -> datetime:
    local = now.astimezone(program.zone)
    year, month = add_months(local.year, local.month, -program.tier_window_months)
    if local.day <= LAST_DAY_EVERY_MONTH_HAS:
        return local.replace(year=year, month=month)
    # From the 29th to the 31st the window starts once that month's 28th is over: never earlier
    # than it started on the 28th, so a purchase that has left the window stays out.
    return datetime(year, month, LAST_DAY_EVERY_MONTH_HAS, tzinfo=program.zone) + timedelta(days=1)


def _qualifying_expression(basis: str) -> Any:
    """What one sale counts towards a tier: its points net of reversals, or what was paid for
    the goods kept (sales.kept_total, kept up to date by returns)."""
    if basis == TierBasis.POINTS:
        return func.coalesce(func.sum(Sale.points_earned - Sale.points_reversed), 0).label("value")
    return func.coalesce(func.sum(Sale.kept_total), 0).label("value")


def _in_window(basis: str) -> Any:
    """Sales since `:window_start` that count, summed (one index range per member)."""
    return select(_qualifying_expression(basis)).where(
        Sale.occurred_at >= bindparam("window_start", type_=UtcDateTime()),
        Sale.status != SaleStatus.VOIDED,
    )


_EVERY_MEMBER = {
    basis: _in_window(basis).add_columns(Sale.member_id).group_by(Sale.member_id)
    for basis in TierBasis
}


def qualifying_subquery(basis: str) -> Any:
    """`:member_id`'s qualifying value since `:window_start`, as a scalar subquery, so that a
    sale can read it in the same round trip as everything else it needs about the member."""
    return _in_window(basis).where(Sale.member_id == bindparam("member_id")).scalar_subquery()


_ONE_MEMBER = {basis: select(qualifying_subquery(basis)) for basis in TierBasis}


def _qualifying_query(program: ProgramSettings, now: datetime) -> Any:
    return _EVERY_MEMBER[TierBasis(program.tier_basis)].params(
        window_start=window_start(program, now)
    )


def qualifying_value(
    session: Session, member_id: int, program: ProgramSettings, now: datetime
) -> int:
    value = session.connection().execute(
        _ONE_MEMBER[TierBasis(program.tier_basis)],
        {"member_id": member_id, "window_start": window_start(program, now)},
    )
    return int(value.scalar_one())


def counts_towards_tier(
    program: ProgramSettings, *, occurred_at: datetime, kept_total: int, points: int, now: datetime
) -> int:
    """What a new sale adds to its buyer's qualifying value."""
    if occurred_at < window_start(program, now):
        return 0  # an offline till's sale from before the window
    return points if program.tier_basis == TierBasis.POINTS else kept_total


def _floor(state: MemberTier | None, tiers_by_id: dict[int, Tier], now: datetime) -> Tier | None:
    if state is None or state.floor_tier_id is None:
        return None
    if state.floor_until is not None and state.floor_until <= now:
        return None
    return tiers_by_id.get(state.floor_tier_id)


def _higher(a: Tier | None, b: Tier | None) -> Tier | None:
    if a is None or (b is not None and b.rank > a.rank):
        return b
    return a


@dataclass(frozen=True)
class TierStanding:
    tier: TierView | None
    changed: bool


def current_tier(session: Session, member_id: int, now: datetime) -> TierView | None:
    state = session.get(MemberTier, member_id)
    if state is None:
        return None
    tiers_by_id = {tier.id: tier for tier in all_tiers(session)}
    return _view(_higher(tiers_by_id.get(state.tier_id or -1), _floor(state, tiers_by_id, now)))


@dataclass(frozen=True)
class TierRow:
    id: int
    view: TierView
    threshold: int


_tier_rows_cache: VersionedCache[list[TierRow]] = VersionedCache()
_TIER_ROWS = select(Tier).order_by(Tier.rank)


def tier_rows(session: Session, config_version: str) -> list[TierRow]:
    """The tiers, read once per process and configuration version (loyalty/versioned.py)."""

    def load() -> list[TierRow]:
        return [
            TierRow(tier.id, tier_view(tier), tier.threshold)
            for tier in session.scalars(_TIER_ROWS)
        ]

    return _tier_rows_cache.get(session, config_version, load)


def _held_tier_upsert(dialect_insert: Any) -> Any:
    insert_held = dialect_insert(_member_tiers).values(
        member_id=bindparam("member_id"), tier_id=bindparam("tier_id"), since=bindparam("since")
    )
    return insert_held.on_conflict_do_update(
        index_elements=["member_id"],
        set_={
            "tier_id": insert_held.excluded.tier_id,
            "since": insert_held.excluded.since,
            "below_since": None,
        },
    )


_SAVE_HELD_TIER = {name: _held_tier_upsert(insert) for name, insert in UPSERT_INSERT.items()}


def _save_held_tier(session: Session, member_id: int, tier_id: int, now: datetime) -> None:
    """Set the tier a member holds, in one statement, safe against a racing sale."""
    connection = session.connection()
    connection.execute(
        _SAVE_HELD_TIER[connection.dialect.name],
        {"member_id": member_id, "tier_id": tier_id, "since": now},
    )


def needs_qualifying(session: Session, program: ProgramSettings, held_rank: int | None) -> bool:
    """Whether a sale could move this member up: there are tiers and they are not at the top."""
    tiers = tier_rows(session, program.config_version)
    return bool(tiers) and (held_rank is None or held_rank < tiers[-1].view.rank)


def upgrade_after_sale(
    session: Session,
    member_id: int,
    program: ProgramSettings,
    now: datetime,
    *,
    qualifying: int,
    held_rank: int | None,
    current: TierView | None,
) -> TierStanding:
    """Move the member up if this sale crossed a threshold; never down (reviews do that).
    `qualifying` is the member's value with this sale counted; `held_rank` and `current` (the
    held tier, or a staff floor above it) come from the identification the sale already made,
    so deciding costs no query."""
    reached = None
    for row in tier_rows(session, program.config_version):
        if row.threshold <= qualifying:
            reached = row
    if reached is None or (held_rank is not None and reached.view.rank <= held_rank):
        return TierStanding(current, changed=False)
    _save_held_tier(session, member_id, reached.id, now)
    if current is not None and current.rank >= reached.view.rank:
        return TierStanding(current, changed=False)  # a staff floor still ranks higher
    return TierStanding(reached.view, changed=True)


@dataclass(frozen=True)
class Standing:
    """The tier a member enjoys now: held, or a higher staff floor."""

    tier: TierView | None


def set_floor(
    session: Session,
    *,
    member_id: int,
    tier_code: str,
    until: datetime | None,
    actor: str,
    now: datetime,
) -> Standing:
    """Give a member (not erased) a tier (a VIP, a complaint put right) until `until` (None:
    until removed); where they stand now."""
    get_member(session, member_id)
    tier = get_tier(session, tier_code)
    if until is not None and until <= now:
        raise InvalidInput("the end date is in the past", field="until")
    state = session.get(MemberTier, member_id)
    if state is None:
        state = MemberTier(member_id=member_id, since=now)
        session.add(state)
    before = (state.floor_tier_id, state.floor_until.isoformat() if state.floor_until else None)
    state.floor_tier_id, state.floor_until = tier.id, until
    session.flush()
    record(
        session,
        actor=actor,
        action="tier.floor",
        subject_type="member",
        subject_id=member_id,
        now=now,
        tier=tier_code,
        until=until.isoformat() if until else None,
        before=list(before),
    )
    return Standing(current_tier(session, member_id, now))


def remove_floor(session: Session, *, member_id: int, actor: str, now: datetime) -> Standing:
    """End a staff-given floor now (given by mistake, or the reason for it is over). The member
    is back at the tier they hold by qualifying; removing a floor that is not there changes
    nothing and audits nothing."""
    get_member(session, member_id)
    state = session.get(MemberTier, member_id)
    if state is not None and state.floor_tier_id is not None:
        ended = next(
            (tier.code for tier in all_tiers(session) if tier.id == state.floor_tier_id), None
        )
        until = state.floor_until.isoformat() if state.floor_until else None
        state.floor_tier_id, state.floor_until = None, None
        session.flush()
        record(
            session,
            actor=actor,
            action="tier.floor_remove",
            subject_type="member",
            subject_id=member_id,
            now=now,
            before=[ended, until],
        )
    return Standing(current_tier(session, member_id, now))


@dataclass
class ReviewReport:
    upgraded: int = 0
    grace_started: int = 0
    downgraded: int = 0
    floors_ended: int = 0


def _highest_reached(value: Any, column: Any) -> Any:
    """`column` of the highest-ranked tier whose threshold `value` meets (NULL: none)."""
    return (
        select(column)
        .where(_tiers.c.threshold <= value)
        .order_by(_tiers.c.rank.desc())
        .limit(1)
        .scalar_subquery()
    )


def _standing() -> Any:
    """For every member with a tier row: the tier they hold, its rank, and the tier (and rank)
    their qualifying value reaches now; -1 stands for no tier."""
    held = _tiers.alias("held")
    values = _review_values
    value = func.coalesce(values.c.value, 0)
    return (
        select(
            _member_tiers.c.member_id,
            _member_tiers.c.tier_id.label("held_id"),
            func.coalesce(held.c.rank, -1).label("held_rank"),
            _highest_reached(value, _tiers.c.id).label("earned_id"),
            func.coalesce(_highest_reached(value, _tiers.c.rank), -1).label("earned_rank"),
        )
        .select_from(
            _member_tiers.outerjoin(held, held.c.id == _member_tiers.c.tier_id).outerjoin(
                values, values.c.member_id == _member_tiers.c.member_id
            )
        )
        .subquery("standing")
    )


def _first_tiers(now: datetime) -> Any:
    """Members who have no tier row yet but whose sales reach a tier: their rows."""
    values = _review_values
    earned = _highest_reached(values.c.value, _tiers.c.id)
    has_row = select(_member_tiers.c.member_id).where(
        _member_tiers.c.member_id == values.c.member_id
    )
    return (
        insert(_member_tiers)
        .from_select(
            ["member_id", "tier_id", "since"],
            select(values.c.member_id, earned, literal(now, UtcDateTime())).where(
                earned.is_not(None), ~has_row.exists()
            ),
        )
        .returning(_member_tiers.c.member_id)
    )


def review_tiers(session: Session, program: ProgramSettings, now: datetime) -> ReviewReport:
    """The periodic review: up where a threshold is now met, down where a member has been below
    their tier for the whole grace period. Set-based: a handful of statements whatever the
    number of members (UPDATE … FROM: SQLite 3.33 or later), in one transaction."""
    report = ReviewReport()
    if not all_tiers(session):
        return report
    session.flush()
    connection = session.connection()
    report.floors_ended = connection.execute(
        update(_member_tiers)
        .where(_member_tiers.c.floor_until <= now)
        .values(floor_tier_id=None, floor_until=None)
    ).rowcount
    qualifying = _qualifying_query(program, now).subquery("qualifying")
    _review_values.create(connection)  # a failed review rolls its creation back with it
    connection.execute(
        insert(_review_values).from_select(
            ["member_id", "value"],
            # anonymous sales group under a NULL member: they reach no tier
            select(qualifying.c.member_id, qualifying.c.value).where(
                qualifying.c.member_id.is_not(None)
            ),
        )
    )
    # counted from RETURNING: psycopg reports no row count for this INSERT … SELECT
    report.upgraded = len(connection.execute(_first_tiers(now)).all())

    def change(condition: Any, *, to_earned: bool, below_since: datetime | None) -> int:
        """UPDATE the rows whose standing meets `condition`: move them to the tier they reach
        (from `now`), or only set when they went below it."""
        standing = _standing()
        values: dict[str, Any] = {"below_since": below_since}
        if to_earned:
            values |= {"tier_id": standing.c.earned_id, "since": now}
        statement = (
            update(_member_tiers)
            .where(
                _member_tiers.c.member_id == standing.c.member_id,
                # a sale that moved the member up meanwhile wins (PostgreSQL rechecks this
                # on the locked row): the review's view of the tier held is stale then
                _member_tiers.c.tier_id.is_not_distinct_from(standing.c.held_id),
                condition(standing),
            )
            .values(**values)
        )
        return int(connection.execute(statement).rowcount)

    below = _member_tiers.c.below_since
    report.upgraded += change(
        lambda s: s.c.earned_rank > s.c.held_rank, to_earned=True, below_since=None
    )
    change(
        lambda s: and_(s.c.earned_rank == s.c.held_rank, below.is_not(None)),
        to_earned=False,
        below_since=None,
    )
    # Downgrades before grace starts: a grace period that starts now cannot also end now.
    grace_began_by = now - timedelta(days=program.tier_grace_days)
    report.downgraded = change(
        lambda s: and_(s.c.earned_rank < s.c.held_rank, below <= grace_began_by),
        to_earned=True,
        below_since=None,
    )
    report.grace_started = change(
        lambda s: and_(s.c.earned_rank < s.c.held_rank, below.is_(None)),
        to_earned=False,
        below_since=now,
    )
    _review_values.drop(connection)
    session.expire_all()  # MemberTier objects loaded before the review are stale now
    return report


@dataclass(frozen=True)
class Progress:
    tier: TierView | None
    next_tier: TierView | None
    basis: str
    qualifying: int
    needed: int | None
    window_starts: datetime
    counts_until: datetime | None  # when the oldest counted sale leaves the window


def progress(session: Session, member_id: int, program: ProgramSettings, now: datetime) -> Progress:
    tiers = all_tiers(session)
    tier = current_tier(session, member_id, now)
    value = qualifying_value(session, member_id, program, now)
    rank = tier.rank if tier else -1
    higher = [t for t in tiers if t.rank > rank]
    next_tier = min(higher, key=lambda t: t.rank) if higher else None
    start = window_start(program, now)
    oldest = session.scalar(
        select(func.min(Sale.occurred_at)).where(
            Sale.member_id == member_id,
            Sale.occurred_at >= start,
            Sale.status != SaleStatus.VOIDED,
        )
    )
    counts_until = None
    if oldest is not None:
        local = oldest.astimezone(program.zone)
        if local.day <= LAST_DAY_EVERY_MONTH_HAS:
            year, month = add_months(local.year, local.month, program.tier_window_months)
            counts_until = local.replace(year=year, month=month)
        else:  # see window_start: it stays in until the window starts on the 1st after
            year, month = add_months(local.year, local.month, program.tier_window_months + 1)
            counts_until = datetime(year, month, 1, tzinfo=program.zone)
    return Progress(
        tier=tier,
        next_tier=_view(next_tier),
        basis=program.tier_basis,
        qualifying=value,
        needed=max(next_tier.threshold - value, 0) if next_tier else None,
        window_starts=start,
        counts_until=counts_until,
    )


def member_progress(session: Session, member_id: int, now: datetime) -> Progress:
    """Where a member (not erased) stands, by the program's basis and window."""
    get_member(session, member_id)
    return progress(session, member_id, get_program(session), now)
