"""Who is signed in to the till, kept in Flask's signed cookie session: the staff account's id
and its store's id, nothing else. The account is read again on every request
(`signed_in_account`), so disabling it, or moving it to another store or role, counts at once."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import g, session

from loyalty.staff.accounts import SignedIn, may_act_on_store, signed_in_account
from server.core.extensions import db
from web.redirects import local_path

ACCOUNT = "staff_account_id"
STORE = "store_id"
START = "/till/"


def begin(account: SignedIn) -> None:
    """A new session for this account: nothing of the one before survives (no fixation)."""
    session.clear()
    session.permanent = True
    session[ACCOUNT] = account.account_id
    session[STORE] = account.store_id


def end() -> None:
    session.clear()
    g.pop("till_account", None)


def load() -> None:
    """Read the session's account once per request into `g.till_account` (None when nobody
    is signed in); a session whose account is gone or disabled is ended."""
    account_id = session.get(ACCOUNT)
    account = signed_in_account(db.session(), account_id) if isinstance(account_id, int) else None
    if account is None and ACCOUNT in session:
        end()
    g.till_account = account


def current() -> SignedIn | None:
    account: SignedIn | None = g.get("till_account")
    return account


def may_work_till(account: SignedIn, store_id: object) -> bool:
    return isinstance(store_id, int) and may_act_on_store(account, store_id)


def session_store_id() -> object:
    return session.get(STORE)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: `target` only when it is a path of this site under
    /till/; anything else (another site, `//host`, `/\\host`, `..`) goes to the till's start."""
    local = local_path(target, START)
    path = urlsplit(local).path
    if not path.startswith(START) or ".." in unquote(path).split("/"):
        return START
    return local
