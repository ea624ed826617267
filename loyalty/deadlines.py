"""How long a request may wait on PostgreSQL, and what happens to connections that died.

A till must hear "try again" within seconds, never hang until gunicorn kills its worker, and
never get a 500 because the database restarted while a connection idled in the pool:

- connecting gives up after `connect` seconds (libpq's connect_timeout);
- the server cancels a statement after `statement` seconds and a lock wait after `lock`
  seconds (statement_timeout, lock_timeout), which covers a slow query or a long lock;
- a server that does not answer at all (frozen, or cut off) cannot cancel anything, so the
  client stops waiting `statement` + 1 seconds after it asked: the connection is closed and the
  request fails with OperationalError (answered 503 with Retry-After, server/core/errors.py);
- a pooled connection the server closed meanwhile (a restart: PostgreSQL tells each client,
  so its socket turns readable) is replaced when it is checked out, before the request sends
  anything on it: one `select()` with no wait, far cheaper than a ping per request.

Only the web app's engine has these; the CLI and the jobs (a tier review runs for many
seconds on purpose) keep PostgreSQL's defaults.
"""

from __future__ import annotations

import select
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError


@dataclass(frozen=True)
class Deadlines:
    connect: int = 3  # seconds; libpq counts whole seconds, 2 at least
    statement: float = 5.0
    lock: float = 3.0

    @property
    def answer_within(self) -> float:
        """How long the client waits for any answer: the server's own timeout fires first."""
        return self.statement + 1.0

    def connect_args(self) -> dict[str, Any]:
        statement_ms, lock_ms = int(self.statement * 1000), int(self.lock * 1000)
        return {
            "connect_timeout": max(self.connect, 2),
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}",
        }


class AnsweringConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most `answer_within` seconds for the server."""

    answer_within: float | None = None

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None and self.answer_within is not None:
            kwargs["timeout"] = self.answer_within
        try:
            return super().wait(gen, *args, **kwargs)
        except pg_errors._WaitTimeout as exc:  # noqa: SLF001 - psycopg's own timeout signal
            self.pgconn.finish()  # its state is unknown now: nobody may use it again
            msg = f"the database did not answer within {kwargs['timeout']:g} s"
            raise psycopg.OperationalError(msg) from exc


def _closed_by_server(dbapi_connection: Any) -> bool:
    """An idle connection whose socket has something to read: the server's goodbye (or EOF)."""
    try:
        fileno = dbapi_connection.pgconn.socket
    except psycopg.OperationalError:
        return True  # closed already
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


def apply_deadlines(engine: Engine, deadlines: Deadlines) -> None:
    """Give a PostgreSQL engine's connections these deadlines (see the module's docstring)."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        connection = AnsweringConnection.connect(*cargs, **cparams)
        connection.answer_within = deadlines.answer_within
        return connection

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if _closed_by_server(dbapi_connection):
            raise DisconnectionError("the server closed this connection while it was pooled")
