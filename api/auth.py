"""Terminal authentication: `Authorization: Bearer <key>`, one store per key."""

from __future__ import annotations

from flask import abort, g, request

from api.extensions import db
from loyalty.stores.services import TerminalRef, authenticate_terminal


def require_terminal() -> None:
    """A blueprint's before_request: every call below it is made by a known terminal."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    terminal = (
        authenticate_terminal(db.session(), key.strip()) if scheme.lower() == "bearer" else None
    )
    if terminal is None:
        abort(401, description="a valid terminal key is needed: Authorization: Bearer <key>")
    g.terminal = terminal


def current_terminal() -> TerminalRef:
    terminal: TerminalRef = g.terminal
    return terminal
