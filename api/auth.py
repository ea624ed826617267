"""Who is calling: `Authorization: Bearer <key>`. Terminal keys (`lt_…`) belong to one store;
staff keys (`ls_…`) carry scopes. A missing or unknown key is 401, a key without the scope a
call needs is 403."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, g, request

from api.extensions import db
from loyalty.staff.services import Scope, StaffRef, authenticate_staff
from loyalty.stores.services import TerminalRef, authenticate_terminal

View = TypeVar("View", bound=Callable[..., Any])


def _bearer() -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def require_terminal() -> None:
    """A blueprint's before_request: every call below it is made by a known terminal."""
    key = _bearer()
    terminal = authenticate_terminal(db.session(), key) if key else None
    if terminal is None:
        abort(401, description="a valid terminal key is needed: Authorization: Bearer <key>")
    g.terminal = terminal


def current_terminal() -> TerminalRef:
    terminal: TerminalRef = g.terminal
    return terminal


def staff_required(scope: Scope) -> Callable[[View], View]:
    """For views of the marketer's console and back office."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            key = _bearer()
            staff = authenticate_staff(db.session(), key) if key else None
            if staff is None:
                abort(401, description="a valid staff key is needed: Authorization: Bearer <key>")
            if scope not in staff.scopes:
                abort(403, description=f"this staff key does not have the {scope} scope")
            g.staff = staff
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def terminal_or_staff(view: View) -> View:
    """For what tills and the console both read (program settings, tier progress)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        key = _bearer()
        session = db.session()
        caller = key and (authenticate_terminal(session, key) or authenticate_staff(session, key))
        if not caller:
            abort(401, description="a valid terminal or staff key is needed")
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


def current_staff() -> StaffRef:
    staff: StaffRef = g.staff
    return staff
