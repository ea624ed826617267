"""Who is signed in to the member page, kept in Flask's one signed cookie session under keys of
its own: `member_id` once signed in, `member_sign_in_email` while a code is awaited. The till
reads only its own keys (web/till/session.py) and this page only these, and signing in to
either starts a new session (cleared, then rebuilt), so a till's session never grants the
member page anything, nor the other way round."""

from __future__ import annotations

from flask import session

MEMBER = "member_id"
AWAITING = "member_sign_in_email"


def await_code(email: str) -> None:
    session[AWAITING] = email


def awaited_email() -> str | None:
    email = session.get(AWAITING)
    return email if isinstance(email, str) else None


def begin(member_id: int) -> None:
    """A new session for this member: nothing of the one before survives (no fixation)."""
    session.clear()
    session.permanent = True
    session[MEMBER] = member_id


def end() -> None:
    session.clear()


def current() -> int | None:
    member_id = session.get(MEMBER)
    return member_id if isinstance(member_id, int) and not isinstance(member_id, bool) else None
