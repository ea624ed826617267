"""Staff keys with scopes: what the marketer's console and back-office integrations call with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.errors import InvalidInput, NotFound
from loyalty.keys import find_key, new_key
from loyalty.staff.models import StaffKey

KEY_PREFIX = "ls"


class Scope(StrEnum):
    RULES = "rules"  # earning rules
    TIERS = "tiers"  # tiers and manual tier floors
    POINTS = "points"  # manual point adjustments
    REPORTS = "reports"  # liability and programme figures
    PROGRAM = "program"  # program settings
    MEMBERS = "members"  # full member records, search, export of a member's data
    METRICS = "metrics"  # /metrics
    KEYS = "keys"  # tills' keys (list, rotate, revoke) and the list of staff keys
    OFFERS = "offers"  # offers, coupons, code batches and the rewards catalogue
    REFERRALS = "referrals"  # referral terms, the list of referrals and the programme's funnel


@dataclass(frozen=True)
class StaffRef:
    id: int
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        # actor columns hold 80 characters; the id identifies, the name helps a reader
        return f"staff:{self.id}:{self.name[:60]}"


def create_staff_key(
    session: Session, *, name: str, scopes: list[str], actor: str, now: datetime
) -> tuple[StaffKey, str]:
    """The key row and the key itself, which is shown this once and not kept."""
    unknown = set(scopes) - {s.value for s in Scope}
    if unknown or not scopes:
        raise InvalidInput(
            f"scopes are some of: {', '.join(s.value for s in Scope)}", field="scopes"
        )
    if not 1 <= len(name.strip()) <= 120:  # noqa: PLR2004 - the column's width
        raise InvalidInput("a name has 1 to 120 characters", field="name")
    key = new_key(KEY_PREFIX)
    staff_key = StaffKey(
        name=name.strip(),
        key_id=key.key_id,
        key_hash=key.secret_hash,
        scopes=sorted(set(scopes)),
        created_at=now,
    )
    session.add(staff_key)
    session.flush()
    record(
        session,
        actor=actor,
        action="staff_key.create",
        subject_type="staff_key",
        subject_id=staff_key.id,
        now=now,
        name=staff_key.name,
        scopes=staff_key.scopes,
    )
    return staff_key, key.plaintext


_STAFF_BY_KEY_ID = select(StaffKey.id, StaffKey.name, StaffKey.scopes, StaffKey.key_hash).where(
    StaffKey.key_id == bindparam("key_id"), StaffKey.revoked_at.is_(None)
)


def authenticate_staff(session: Session, api_key: str) -> StaffRef | None:
    row = find_key(session, KEY_PREFIX, _STAFF_BY_KEY_ID, api_key)
    if row is None:
        return None
    return StaffRef(id=row.id, name=row.name, scopes=frozenset(row.scopes))


@dataclass(frozen=True)
class StaffKeyInfo:
    """A staff key as the operator lists it: never the key."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def list_staff_keys(session: Session) -> list[StaffKeyInfo]:
    return [
        StaffKeyInfo(k.id, k.name, tuple(k.scopes), k.created_at, k.revoked_at)
        for k in session.scalars(select(StaffKey).order_by(StaffKey.id))
    ]


def revoke_staff_key(session: Session, *, key_id: int, actor: str, now: datetime) -> None:
    staff_key = session.get(StaffKey, key_id)
    if staff_key is None:
        raise NotFound(f"no staff key has id {key_id}", field="key")
    staff_key.revoked_at = now
    record(
        session,
        actor=actor,
        action="staff_key.revoke",
        subject_type="staff_key",
        subject_id=key_id,
        now=now,
    )
