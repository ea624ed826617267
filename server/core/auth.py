"""Who is calling: `Authorization: Bearer <key>`. Terminal keys (`lt_…`) belong to one store;
staff keys (`ls_…`) carry scopes. A missing or unknown key is 401, a key without the scope a
call needs is 403. The decorators here enforce; api/openapi.py adds what the OpenAPI document
says about them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, g, request

from loyalty.members.services import enrolled_store_of
from loyalty.staff.services import Scope, StaffRef, authenticate_staff
from loyalty.stores.access import TillViewer
from loyalty.stores.services import TerminalRef, authenticate_terminal
from server.core import context
from server.core.extensions import db
from server.core.shared import Sightings

View = TypeVar("View", bound=Callable[..., Any])
Caller = TerminalRef | StaffRef


def bearer() -> str | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def _caller() -> Caller | None:
    """The terminal or staff member the key belongs to, read once per request."""
    if "caller" not in g:
        key = bearer()
        session = db.session()
        found: Caller | None = None
        if key:
            found = authenticate_terminal(session, key, context.now()) or authenticate_staff(
                session, key
            )
        g.caller = found
        if isinstance(found, TerminalRef):
            g.terminal = found
        elif isinstance(found, StaffRef):
            g.staff = found
    caller: Caller | None = g.caller
    return caller


def require_terminal() -> TerminalRef:
    caller = _caller()
    if not isinstance(caller, TerminalRef):
        abort(401, description="a valid terminal key is needed: Authorization: Bearer <key>")
    return caller


def require_staff(scope: Scope) -> StaffRef:
    caller = _caller()
    if not isinstance(caller, StaffRef):
        abort(401, description="a valid staff key is needed: Authorization: Bearer <key>")
    if scope not in caller.scopes:
        abort(403, description=f"this staff key does not have the {scope} scope")
    return caller


def require_terminal_or_staff(scope: Scope | None) -> Caller:
    caller = _caller()
    if caller is None:
        abort(401, description="a valid terminal or staff key is needed")
    if isinstance(caller, StaffRef) and scope is not None and scope not in caller.scopes:
        abort(403, description=f"this staff key does not have the {scope} scope")
    return caller


def _checked(check: Callable[[], object]) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check()
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def terminal_required(view: View) -> View:
    """For the till's calls: a terminal key."""
    return _checked(require_terminal)(view)


def staff_required(scope: Scope) -> Callable[[View], View]:
    """For the console's and the back office's calls: a staff key with `scope`."""
    return _checked(lambda: require_staff(scope))


def terminal_or_staff(scope: Scope | None = None) -> Callable[[View], View]:
    """For what tills and staff both call; staff need `scope` when one is named."""
    return _checked(lambda: require_terminal_or_staff(scope))


def current_terminal() -> TerminalRef:
    terminal: TerminalRef = g.terminal
    return terminal


def current_terminal_or_none() -> TerminalRef | None:
    """The terminal calling, or None when it is staff."""
    caller = _caller()
    return caller if isinstance(caller, TerminalRef) else None


def viewer() -> TillViewer | None:
    """Who reads members, as loyalty.stores.access needs it: the calling till, or None for
    staff (their scope was checked already)."""
    terminal = current_terminal_or_none()
    if terminal is None:
        return None
    sightings: Sightings = current_app.extensions["loyalty.sightings"]
    session = db.session()
    return TillViewer(
        store_id=terminal.store_id,
        identified=functools.partial(sightings.seen, terminal.id),
        remember=functools.partial(sightings.remember, terminal.id),
        enrolled_store_of=functools.partial(enrolled_store_of, session),
    )


def current_staff() -> StaffRef:
    staff: StaffRef = g.staff
    return staff


def current_caller() -> Caller:
    caller = _caller()
    if caller is None:  # pragma: no cover - views are behind one of the checks above
        abort(401)
    return caller


def actor() -> str:
    """Who the audit log and the ledger say made a change."""
    return current_caller().actor


def owner() -> str:
    """Whose idempotency keys these are: a terminal's or a staff key's own."""
    caller = current_caller()
    kind = "terminal" if isinstance(caller, TerminalRef) else "staff"
    return f"{kind}:{caller.id}"
