"""Coupons: shared codes, unique codes generated in bulk, coupons assigned to members (once per
offer however often a marketer runs the assignment), a member's wallet, looking a typed or
scanned code up, and QR images."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.cards.qr import qr_png, qr_svg
from loyalty.coupons.codes import DEFAULT_CHARSET, CodeSpec, display_to_key, lookup_forms
from loyalty.coupons.discounts import Benefit
from loyalty.coupons.models import (
    CodeBatch,
    Coupon,
    CouponAssignment,
    CouponRedemption,
    CouponSource,
    CouponStatus,
    Offer,
    OfferStatus,
    RedemptionStatus,
)
from loyalty.coupons.offers import InvalidOffer, benefit_of, get_offer_row
from loyalty.db import MAX_ID
from loyalty.errors import Conflict, InvalidInput, NotFound
from loyalty.members.models import Member, MemberStatus

GENERATION_BATCH = 20_000
ASSIGN_BATCH = 5_000  # members given coupons in one request, or in one batch of the job
MAX_KEY = 64  # characters of a normalised code
SHARED_LENGTH = (3, 32)
GIVE_UP_AFTER = 20  # batches in a row that found no free code
MAX_ASSIGN = 5_000_000  # members in one list for the assign-coupons job


@dataclass(frozen=True)
class CouponView:
    id: int
    code: str
    offer_id: int
    offer_name: str
    source: str
    status: str
    member_id: int | None
    uses: int
    uses_left: int | None
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class WalletCoupon:
    """A coupon a member can use now, as the till and the member page show it."""

    code: str
    offer_id: int
    offer_name: str
    gives: str
    valid_until: datetime | None
    uses_left: int | None


def describe(benefit: Benefit) -> str:
    """What a coupon gives, in a few words for a cashier (minor units stay numbers)."""
    kind = benefit.kind.value
    where = {
        "basket": "the basket",
        "items": "listed items",
        "cheapest": "the cheapest item",
    }[benefit.target.value]
    if kind == "percent_off":
        cap = f" (at most {benefit.cap})" if benefit.cap else ""
        return f"{benefit.value}% off {where}{cap}"
    if kind == "amount_off":
        return f"{benefit.value} off {where}"
    if kind == "fixed_price":
        return f"{where} for {benefit.value} each"
    if kind == "free_units":
        return f"buy {benefit.buy_quantity} get {benefit.free_quantity} free"
    if kind == "extra_points":
        return f"{benefit.value} extra points"
    return f"points x{benefit.value / 100:g}"


def _until(coupon: Coupon, offer: Offer) -> datetime | None:
    ends = [moment for moment in (coupon.valid_until, offer.ends_at) if moment is not None]
    return min(ends) if ends else None


def uses_allowed(coupon: Coupon, offer: Offer) -> int | None:
    """How often the coupon may be used: the offer's `uses_per_coupon`, and once when the
    offer says nothing and the coupon was given to a member (assigned, a reward, a next-visit
    or a referral coupon); None (no limit) for paper and shared codes the offer leaves open."""
    if offer.uses_per_coupon is not None:
        return offer.uses_per_coupon
    return 1 if coupon.member_id is not None else None


def _uses_left(coupon: Coupon, offer: Offer) -> int | None:
    allowed = uses_allowed(coupon, offer)
    return None if allowed is None else max(0, allowed - coupon.uses)


def _uses(session: Session, coupon_ids: list[int]) -> dict[int, int]:
    """Redemptions not given back, per coupon (a coupon's own `uses` counts them only while
    its offer limits uses per coupon)."""
    rows = session.execute(
        select(CouponRedemption.coupon_id, func.count())
        .where(
            CouponRedemption.coupon_id.in_(coupon_ids),
            CouponRedemption.status == RedemptionStatus.REDEEMED,
        )
        .group_by(CouponRedemption.coupon_id)
    )
    return {coupon_id: int(count) for coupon_id, count in rows}


def coupon_view(coupon: Coupon, offer: Offer, uses: int | None = None) -> CouponView:
    return CouponView(
        id=coupon.id,
        code=coupon.code,
        offer_id=offer.id,
        offer_name=offer.name,
        source=coupon.source,
        status=coupon.status,
        member_id=coupon.member_id,
        uses=coupon.uses if uses is None else uses,
        uses_left=_uses_left(coupon, offer),
        valid_from=coupon.valid_from,
        valid_until=_until(coupon, offer),
    )


def find_coupon(session: Session, text: str) -> tuple[Coupon, Offer] | None:
    """The coupon a cashier typed or a scanner read: case, spaces, dashes and look-alikes do
    not matter. None when no coupon has that code."""
    return find_coupons(session, [text])[0]


def find_coupons(session: Session, texts: Sequence[str]) -> list[tuple[Coupon, Offer] | None]:
    """`find_coupon` for each text, in one query (a basket's codes at once)."""
    forms = [[f for f in lookup_forms(text) if 0 < len(f) <= MAX_KEY] for text in texts]
    wanted = {form for text_forms in forms for form in text_forms}
    by_key: dict[str, tuple[Coupon, Offer]] = {}
    if wanted:
        rows = session.execute(
            select(Coupon, Offer)
            .join(Offer, Offer.id == Coupon.offer_id)
            .where(Coupon.key.in_(wanted))
        ).all()
        by_key = {coupon.key: (coupon, offer) for coupon, offer in rows}
    # for each text, the code as typed first, then with look-alikes mapped
    return [next((by_key[f] for f in text_forms if f in by_key), None) for text_forms in forms]


def usable_coupon(coupon: Coupon, offer: Offer) -> bool:
    """Whether a scanned coupon may stand for its owner or a customer: neither it nor its offer
    is stopped (a cancelled or archived coupon identifies nobody)."""
    return coupon.status == CouponStatus.ACTIVE and offer.status == OfferStatus.ACTIVE


def coupon_by_code(session: Session, text: str) -> CouponView:
    found = find_coupon(session, text)
    if found is None:
        raise NotFound("no coupon has this code", field="code")
    coupon, offer = found
    return coupon_view(coupon, offer, _uses(session, [coupon.id]).get(coupon.id, 0))


def qr_image(session: Session, text: str, image: str) -> bytes:
    """The coupon's QR (its code: a coupon code is its own secret, nothing to sign)."""
    coupon = coupon_by_code(session, text)
    return qr_svg(coupon.code) if image == "svg" else qr_png(coupon.code)


def create_shared_coupon(
    session: Session, offer_id: int, code: str, *, actor: str, now: datetime
) -> CouponView:
    """A code many people type ("SUMMER10"); its uses are limited by the offer's limits."""
    offer = _live_offer(session, offer_id)
    key = display_to_key(code, charset=None)
    shortest, longest = SHARED_LENGTH
    if not shortest <= len(key) <= longest or not key.isascii() or not key.isalnum():
        raise InvalidInput("a shared code is 3 to 32 letters and digits", field="code")
    if find_coupon(session, key) is not None:
        raise Conflict("a coupon already has this code", field="code")
    coupon = Coupon(
        offer_id=offer.id,
        key=key,
        code=code.strip().upper(),
        source=CouponSource.SHARED,
        status=CouponStatus.ACTIVE,
        uses=0,
        created_at=now,
    )
    session.add(coupon)
    session.flush()
    record(
        session,
        actor=actor,
        action="coupon.create_shared",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        code=coupon.code,
    )
    return coupon_view(coupon, offer)


def _live_offer(session: Session, offer_id: int) -> Offer:
    offer = get_offer_row(session, offer_id)
    if offer.status != OfferStatus.ACTIVE:
        raise InvalidOffer("the offer is archived", field="offer_id")
    return offer


def issue_coupon(
    session: Session,
    offer: Offer,
    *,
    member_id: int | None,
    source: CouponSource,
    now: datetime,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    sale_id: int | None = None,
) -> Coupon:
    """One new unique code of `offer` (for a member, or on paper); `sale_id`: the sale that
    earned it, whose full return takes it back while unused."""
    spec = CodeSpec(length=10)
    while True:
        code = spec.generate(secrets.SystemRandom())
        key = display_to_key(code, DEFAULT_CHARSET)
        if session.scalar(select(Coupon.id).where(Coupon.key == key)) is None:
            break
    coupon = Coupon(
        offer_id=offer.id,
        key=key,
        code=code,
        source=source,
        status=CouponStatus.ACTIVE,
        member_id=member_id,
        uses=0,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_by_sale_id=sale_id,
        created_at=now,
    )
    session.add(coupon)
    session.flush()
    return coupon


@dataclass(frozen=True)
class Assigned:
    assigned: int
    already_had: int
    not_members: list[int]


def assign_coupons(
    session: Session, offer_id: int, member_ids: list[int], *, actor: str, now: datetime
) -> Assigned:
    """Give each listed member a coupon of the offer; a member who already has one from an
    assignment of this offer gets no second one (a unique index holds it, races included)."""
    offer = _live_offer(session, offer_id)
    if len(member_ids) > ASSIGN_BATCH:
        raise InvalidInput(
            f"at most {ASSIGN_BATCH:,} members at once; more with request_assignment",
            field="member_ids",
        )
    done = _assign_batch(session, offer, member_ids, now)
    record(
        session,
        actor=actor,
        action="coupon.assign",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        assigned=done.assigned,
        already_had=done.already_had,
    )
    return done


def _assign_batch(session: Session, offer: Offer, member_ids: list[int], now: datetime) -> Assigned:
    """One coupon of `offer` for each active member listed who has none from an assignment; a
    code that clashes with another coupon's is drawn again."""
    wanted = sorted({m for m in member_ids if 0 < m <= MAX_ID})
    members = set(
        session.scalars(
            select(Member.id).where(Member.id.in_(wanted), Member.status == MemberStatus.ACTIVE)
        )
    )
    spec = CodeSpec(length=10)
    rng = secrets.SystemRandom()
    made = 0
    for _attempt in range(GIVE_UP_AFTER):
        have = set(
            session.scalars(
                select(Coupon.member_id).where(
                    Coupon.offer_id == offer.id,
                    Coupon.source == CouponSource.ASSIGNED,
                    Coupon.member_id.in_(members),
                )
            )
        )
        missing = sorted(members - have)
        if not missing:
            break
        rows = [
            _row(offer.id, spec.generate(rng), CouponSource.ASSIGNED, now, member_id)
            for member_id in missing
        ]
        made += _insert_new(session, rows)
    return Assigned(
        assigned=made,
        already_had=len(members) - made,
        not_members=sorted(set(member_ids) - members),
    )


@dataclass(frozen=True)
class AssignmentView:
    id: int
    offer_id: int
    requested: int
    processed: int
    assigned: int
    already_had: int
    not_members: int
    status: str
    created_at: datetime
    finished_at: datetime | None


def _assignment_view(job: CouponAssignment) -> AssignmentView:
    return AssignmentView(
        job.id,
        job.offer_id,
        job.requested,
        job.processed,
        job.assigned,
        job.already_had,
        job.not_members,
        job.status,
        job.created_at,
        job.finished_at,
    )


def request_assignment(
    session: Session, offer_id: int, member_ids: list[int], *, actor: str, now: datetime
) -> AssignmentView:
    """A list of any length, for the `assign-coupons` job (ASSIGN_BATCH members a batch)."""
    offer = _live_offer(session, offer_id)
    if not member_ids:
        raise InvalidInput("name at least one member", field="member_ids")
    if len(member_ids) > MAX_ASSIGN:
        raise InvalidInput(f"at most {MAX_ASSIGN:,} members in one list", field="member_ids")
    job = CouponAssignment(
        offer_id=offer.id,
        member_ids=list(member_ids),
        requested=len(member_ids),
        processed=0,
        assigned=0,
        already_had=0,
        not_members=0,
        status="queued",
        actor=actor,
        created_at=now,
    )
    session.add(job)
    session.flush()
    record(
        session,
        actor=actor,
        action="coupon.assign_list",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        assignment_id=job.id,
        requested=job.requested,
    )
    return _assignment_view(job)


def get_assignment(session: Session, assignment_id: int) -> AssignmentView:
    job = session.get(CouponAssignment, assignment_id) if 0 < assignment_id <= MAX_ID else None
    if job is None:
        raise NotFound(f"no assignment has id {assignment_id}", field="assignment_id")
    return _assignment_view(job)


def members_to_assign(session: Session, _now: datetime) -> int:
    """How many listed members the unfinished assignments still have (for a progress bar)."""
    return _still_to_do(session, CouponAssignment, CouponAssignment.processed)


UNFINISHED = ("queued", "running")


def _still_to_do(session: Session, model: Any, done: Any) -> int:
    left = func.coalesce(func.sum(model.requested - done), 0)
    return int(session.scalar(select(left).where(model.status.in_(UNFINISHED))) or 0)


def assign_pending(
    session: Session,
    now: Callable[[], datetime],
    *,
    checkpoint: Callable[[], None],
    progress: Callable[[int], None] | None = None,
) -> int:
    """The job: every unfinished assignment, oldest first, ASSIGN_BATCH members at a time,
    each batch committed with its counts (an interrupted one resumes where it stopped; a
    member is never given a second coupon). How many coupons were given."""
    given = 0
    for job_id in list(
        session.scalars(
            select(CouponAssignment.id)
            .where(CouponAssignment.status.in_(UNFINISHED))
            .order_by(CouponAssignment.id)
        )
    ):
        job = session.get_one(CouponAssignment, job_id)
        offer = session.get_one(Offer, job.offer_id)
        job.status = "running"
        while job.processed < job.requested:
            batch = job.member_ids[job.processed : job.processed + ASSIGN_BATCH]
            done = (
                _assign_batch(session, offer, batch, now())
                if offer.status == OfferStatus.ACTIVE
                else Assigned(0, 0, [])
            )
            job.processed += len(batch)
            job.assigned += done.assigned
            job.already_had += done.already_had
            job.not_members += len(done.not_members)
            given += done.assigned
            checkpoint()
            if progress is not None:
                progress(len(batch))
        job.status, job.finished_at = "done", now()
        record(
            session,
            actor=job.actor,
            action="coupon.assign",
            subject_type="offer",
            subject_id=offer.id,
            now=now(),
            assignment_id=job.id,
            assigned=job.assigned,
            already_had=job.already_had,
        )
        checkpoint()
    return given


def _row(
    offer_id: int,
    code: str,
    source: str,
    now: datetime,
    member_id: int | None = None,
    *,
    charset: str = DEFAULT_CHARSET,
) -> dict[str, Any]:
    return {
        "offer_id": offer_id,
        "key": display_to_key(code, charset),
        "code": code,
        "source": source,
        "status": CouponStatus.ACTIVE,
        "member_id": member_id,
        "uses": 0,
        "created_at": now,
    }


_coupons = Coupon.__table__


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose key (and assignment) is free; how many went in."""
    dialect = session.get_bind().dialect.name
    table: Table = _coupons  # type: ignore[assignment]
    statement: Any = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    statement = statement.on_conflict_do_nothing()
    result = session.connection().execute(statement.returning(table.c.id), rows)
    return len(result.all())


# Bulk generation: a job that writes `requested` new unique codes, batch by batch


@dataclass(frozen=True)
class BatchView:
    id: int
    offer_id: int
    requested: int
    made: int
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def batch_view(batch: CodeBatch) -> BatchView:
    return BatchView(
        batch.id,
        batch.offer_id,
        batch.requested,
        batch.made,
        batch.status,
        batch.error,
        batch.created_at,
        batch.finished_at,
    )


def request_codes(
    session: Session, offer_id: int, spec: CodeSpec, count: int, *, actor: str, now: datetime
) -> BatchView:
    """Record a generation batch (checked first: a spec too small for the count is refused
    here, nothing written); `generate_codes` makes the codes, in a job."""
    offer = _live_offer(session, offer_id)
    spec.validate(count)
    batch = CodeBatch(
        offer_id=offer.id,
        spec=spec_as_dict(spec),
        requested=count,
        made=0,
        status="queued",
        created_at=now,
    )
    session.add(batch)
    session.flush()
    record(
        session,
        actor=actor,
        action="coupon.generate",
        subject_type="offer",
        subject_id=offer.id,
        now=now,
        batch_id=batch.id,
        count=count,
    )
    return batch_view(batch)


def spec_as_dict(spec: CodeSpec) -> dict[str, Any]:
    return {
        "pattern": spec.pattern,
        "length": spec.length,
        "charset": spec.charset,
        "prefix": spec.prefix,
        "postfix": spec.postfix,
        "check_character": spec.check_character,
    }


def get_batch(session: Session, batch_id: int) -> BatchView:
    batch = session.get(CodeBatch, batch_id) if 0 < batch_id <= MAX_ID else None
    if batch is None:
        raise NotFound(f"no code batch has id {batch_id}", field="batch_id")
    return batch_view(batch)


def generate_codes(
    session: Session,
    batch_id: int,
    now: Callable[[], datetime],
    *,
    checkpoint: Callable[[], None],
    progress: Callable[[int], None] | None = None,
) -> BatchView:
    """Make the batch's codes, GENERATION_BATCH at a time, each batch committed
    (`checkpoint`): memory stays flat, and a batch interrupted resumes where it stopped.
    A code that is already taken anywhere in the program is drawn again."""
    batch = session.get(CodeBatch, batch_id)
    if batch is None:
        raise NotFound(f"no code batch has id {batch_id}", field="batch_id")
    spec = CodeSpec(**batch.spec)
    rng = secrets.SystemRandom()
    batch.status = "running"
    checkpoint()
    attempts = 0
    while batch.made < batch.requested:
        wanted = min(GENERATION_BATCH, batch.requested - batch.made)
        codes = spec.batch(wanted, rng)
        rows = [
            _row(batch.offer_id, code, CouponSource.GENERATED, now(), charset=spec.charset)
            | {"batch_id": batch.id}
            for code in codes
        ]
        made = _copy_new(session, rows)
        batch.made += made
        attempts = 0 if made else attempts + 1
        if attempts > GIVE_UP_AFTER:  # pragma: no cover - validate() keeps capacity 10x the count
            batch.status, batch.error = "failed", "no free codes left in the pattern"
            break
        checkpoint()
        if progress is not None:
            progress(made)
    else:
        batch.status = "done"
    batch.finished_at = now()
    checkpoint()
    return batch_view(batch)


def _copy_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Like `_insert_new`, through COPY into a temporary table on PostgreSQL (a million codes
    in seconds), plain multi-row INSERT OR IGNORE on SQLite."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return _insert_new(session, rows)
    raw: Any = connection.connection.driver_connection
    columns = ("offer_id", "key", "code", "source", "status", "uses", "created_at", "batch_id")
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS new_coupons "
            "(LIKE coupons INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY new_coupons ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[column] for column in columns])
        cursor.execute(
            f"INSERT INTO coupons ({', '.join(columns)}) "  # noqa: S608 - fixed names
            f"SELECT DISTINCT ON (key) {', '.join(columns)} FROM new_coupons "
            "ON CONFLICT DO NOTHING"
        )
        made = int(cursor.rowcount)
        cursor.execute("TRUNCATE new_coupons")
    return made


def export_codes(session: Session, batch_id: int) -> Iterator[str]:
    """The batch's codes as CSV lines (code, offer), read in pages: for printing."""
    get_batch(session, batch_id)
    yield "code,offer_id\r\n"
    after = 0
    while True:
        page = session.execute(
            select(Coupon.id, Coupon.code, Coupon.offer_id)
            .where(Coupon.batch_id == batch_id, Coupon.id > after)
            .order_by(Coupon.id)
            .limit(10_000)
        ).all()
        if not page:
            return
        yield "".join(f"{code},{offer_id}\r\n" for _id, code, offer_id in page)
        after = page[-1][0]


def wallet(session: Session, member_id: int, now: datetime) -> list[WalletCoupon]:
    """The member's coupons usable now (assigned, issued at a sale or bought with points)."""
    rows = session.execute(
        select(Coupon, Offer)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Coupon.member_id == member_id,
            Coupon.status == CouponStatus.ACTIVE,
            Offer.status == OfferStatus.ACTIVE,
            or_(Coupon.valid_from.is_(None), Coupon.valid_from <= now),
            or_(Coupon.valid_until.is_(None), Coupon.valid_until > now),
            or_(Offer.starts_at.is_(None), Offer.starts_at <= now),
            or_(Offer.ends_at.is_(None), Offer.ends_at > now),
            # a member's coupon is used once unless its offer says how often (uses_allowed)
            Coupon.uses < func.coalesce(Offer.uses_per_coupon, 1),
        )
        .order_by(Coupon.id)
    ).all()
    return [wallet_entry(coupon, offer) for coupon, offer in rows]


def wallet_entry(coupon: Coupon, offer: Offer) -> WalletCoupon:
    return WalletCoupon(
        code=coupon.code,
        offer_id=offer.id,
        offer_name=offer.name,
        gives=describe(benefit_of(offer)),
        valid_until=_until(coupon, offer),
        uses_left=_uses_left(coupon, offer),
    )


def has_coupons(member_id: Any) -> Any:
    """Whether the member holds an active coupon: a column for the till's identify query, so
    the wallet is read only for members who have one."""
    return (
        select(Coupon.id)
        .where(Coupon.member_id == member_id, Coupon.status == CouponStatus.ACTIVE)
        .exists()
    )


def member_coupons(session: Session, member_id: int) -> list[CouponView]:
    """Every coupon the member holds, used or not (staff and the member page)."""
    rows = session.execute(
        select(Coupon, Offer)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id)
    ).all()
    uses = _uses(session, [coupon.id for coupon, _offer in rows])
    return [coupon_view(coupon, offer, uses.get(coupon.id, 0)) for coupon, offer in rows]


def cancel_coupon(session: Session, text: str, *, actor: str, now: datetime) -> CouponView:
    found = find_coupon(session, text)
    if found is None:
        raise NotFound("no coupon has this code", field="code")
    coupon, offer = found
    session.flush()
    changed = (
        session.connection()
        .execute(
            update(Coupon)
            .where(Coupon.id == coupon.id, Coupon.status == CouponStatus.ACTIVE)
            .values(status=CouponStatus.CANCELLED, cancelled_at=now)
        )
        .rowcount
    )
    if changed:
        record(
            session,
            actor=actor,
            action="coupon.cancel",
            subject_type="coupon",
            subject_id=coupon.id,
            now=now,
        )
    session.refresh(coupon)
    return coupon_view(coupon, offer, _uses(session, [coupon.id]).get(coupon.id, 0))


def codes_to_generate(session: Session, _now: datetime) -> int:
    """How many codes the batches waiting for the job still need (for a progress bar)."""
    return _still_to_do(session, CodeBatch, CodeBatch.made)


def generate_pending(
    session: Session,
    now: Callable[[], datetime],
    *,
    checkpoint: Callable[[], None],
    progress: Callable[[int], None] | None = None,
) -> int:
    """The job: every batch not finished yet, oldest first (an interrupted one resumes).
    How many codes were made."""
    made = 0
    for batch_id in list(
        session.scalars(
            select(CodeBatch.id).where(CodeBatch.status.in_(UNFINISHED)).order_by(CodeBatch.id)
        )
    ):
        before = get_batch(session, batch_id).made
        made += (
            generate_codes(session, batch_id, now, checkpoint=checkpoint, progress=progress).made
            - before
        )
    return made


def take_back_issued(
    session: Session,
    sale_id: int,
    now: datetime,
    *,
    source: CouponSource,
    member_id: int | None = None,
) -> int:
    """The coupons of `source` a sale earned (next-visit, referral), when it comes back whole:
    those not used yet stop working (`member_id`: only that member's). How many."""
    query = update(Coupon).where(
        Coupon.issued_by_sale_id == sale_id,
        Coupon.source == source,
        Coupon.status == CouponStatus.ACTIVE,
        Coupon.uses == 0,
    )
    if member_id is not None:
        query = query.where(Coupon.member_id == member_id)
    session.flush()
    cancelled = session.connection().execute(
        query.values(status=CouponStatus.CANCELLED, cancelled_at=now)
    )
    return int(cancelled.rowcount)
