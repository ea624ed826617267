"""Signing in to the member page without a password: a 6-digit code emailed through the outbox,
good once, for CODE_LIFETIME, and for MAX_ATTEMPTS tries.

Only the code's keyed hash is stored (HMAC-SHA256 under a key derived from the secret key, over
the member's id and the code), so reading the table does not give a code. The email itself
carries the code in the outbox's payload until it is sent, as every outbox message carries
what it says; a code is worth nothing after its ten minutes.

An address that is no active member's is answered exactly as a member's is (nothing is queued,
nothing is raised), so the page cannot be used to learn who is a member. A new code retires the
member's earlier ones: at most one code is alive per member, and every wrong try counts
against it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from loyalty.errors import DomainError, InvalidInput
from loyalty.members.contacts import normalise_email
from loyalty.members.models import Member, MemberSignInCode, MemberStatus
from loyalty.messaging.services import MessageKind, queue
from loyalty.messaging.templates import MEMBER_SIGN_IN_CODE
from loyalty.settings import derived_key

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
KEY_PURPOSE = "member sign-in"


class CodeRefused(DomainError):
    """Wrong, expired, used or tried too often: one error for all, so a guesser learns nothing
    about which."""

    title = "Code refused"

    def __init__(self) -> None:
        super().__init__("the code is wrong or no longer valid; ask for a new one", field="code")


def code_hash(secret: str, member_id: int, code: str) -> str:
    key = derived_key(secret, KEY_PURPOSE).encode()
    return hmac.new(key, f"{member_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _active_member(session: Session, email: str) -> Member | None:
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        return None
    return session.scalars(
        select(Member).where(Member.email == normalised, Member.status == MemberStatus.ACTIVE)
    ).first()


def _alive(now: datetime) -> list[ColumnElement[bool]]:
    return [
        MemberSignInCode.used_at.is_(None),
        MemberSignInCode.expires_at > now,
        MemberSignInCode.attempts < MAX_ATTEMPTS,
    ]


def _retire_codes(session: Session, member_id: int, now: datetime) -> None:
    session.execute(
        update(MemberSignInCode)
        .where(MemberSignInCode.member_id == member_id, *_alive(now))
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def request_code(session: Session, *, email: str, now: datetime, secret: str) -> None:
    """Email a new code to the active member with this address; for any other address do the
    same work but store and send nothing."""
    code = _new_code()
    member = _active_member(session, email)
    digest = code_hash(secret, member.id if member is not None else 0, code)
    if member is None or member.email is None:
        return
    _retire_codes(session, member.id, now)
    row = MemberSignInCode(
        member_id=member.id,
        code_hash=digest,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
        attempts=0,
    )
    session.add(row)
    session.flush()
    data = {"name": member.name, "code": code, "minutes": CODE_LIFETIME.seconds // 60}
    dedupe_key = f"member-sign-in:{row.id}"
    queue(
        session,
        MessageKind.EMAIL,
        member.email,
        MEMBER_SIGN_IN_CODE,
        data,
        dedupe_key,
        now,
        now=now,
        member_id=member.id,
    )


def _live_code(session: Session, member_id: int, now: datetime) -> MemberSignInCode | None:
    return session.scalars(
        select(MemberSignInCode)
        .where(MemberSignInCode.member_id == member_id, *_alive(now))
        .order_by(MemberSignInCode.id.desc())
    ).first()


def _use(session: Session, code_id: int, now: datetime) -> bool:
    """Mark the code used, in one conditional statement: of two requests with the same code,
    only one changes the row, and only that one signs in."""
    used = session.execute(
        update(MemberSignInCode)
        .where(MemberSignInCode.id == code_id, *_alive(now))
        .values(used_at=now)
        .returning(MemberSignInCode.id)
        .execution_options(synchronize_session=False)
    ).first()
    return used is not None


def _count_wrong_try(session: Session, code_id: int, now: datetime) -> None:
    session.execute(
        update(MemberSignInCode)
        .where(MemberSignInCode.id == code_id, *_alive(now))
        .values(attempts=MemberSignInCode.attempts + 1)
        .execution_options(synchronize_session=False)
    )


def verify_code(session: Session, *, email: str, code: str, now: datetime, secret: str) -> int:
    """The member's id when `code` is their live code, which is then used up; else CodeRefused
    (a wrong code counts one of the code's MAX_ATTEMPTS tries: the caller commits even then)."""
    member = _active_member(session, email)
    live = _live_code(session, member.id, now) if member is not None else None
    if member is None or live is None:
        raise CodeRefused
    if not hmac.compare_digest(live.code_hash, code_hash(secret, member.id, code.strip())):
        _count_wrong_try(session, live.id, now)
        raise CodeRefused
    if not _use(session, live.id, now):
        raise CodeRefused
    return member.id
