"""No personal data in the logs: a statement the database refuses is logged with its SQL and
the reason, never with the values it carried (SQLAlchemy's `[parameters: …]`, PostgreSQL's
`DETAIL: Failing row contains (…)`), and the till is told nothing of them either."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from loyalty.clock import SystemClock
from server.app import create_app
from server.core.extensions import db
from server.core.logs import formatter
from tests.conftest import app_settings
from tests.factories import make_till

EMAIL = "very.private.person@example.com"
PHONE = "+44 20 7946 0777"
NAME = "Privatus Personson"


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Every log line, as the server's formatter writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


_REFUSE = {
    "sqlite": [
        """CREATE TRIGGER refuse_private BEFORE INSERT ON members
           WHEN NEW.name = 'Privatus Personson'
           BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END""",
    ],
    "postgresql": [
        """CREATE FUNCTION refuse_private() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.name = 'Privatus Personson' THEN
               RAISE EXCEPTION 'refused by a test trigger'
                 USING DETAIL = 'Failing row contains (' || NEW.email || ', ' || NEW.phone || ')';
             END IF;
             RETURN NEW;
           END $$""",
        """CREATE TRIGGER refuse_private BEFORE INSERT ON members
           FOR EACH ROW EXECUTE FUNCTION refuse_private()""",
    ],
}
_ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_private"],
    "postgresql": ["DROP TRIGGER refuse_private ON members", "DROP FUNCTION refuse_private()"],
}


def test_a_refused_statement_is_logged_without_the_personal_data_it_carried(
    database_url: str, backend: str, logged: io.StringIO
) -> None:
    app = create_app(app_settings(database_url))
    with app.app_context():
        engine = db.engine
        with engine.begin() as connection:
            for statement in _REFUSE[backend]:
                connection.execute(text(statement))
        try:
            with db.session() as session, session.begin():
                till = make_till(session, SystemClock())
            answer = app.test_client().post(
                "/api/v1/members",
                headers=till.headers,
                json={"name": NAME, "email": EMAIL, "phone": PHONE},
            )
        finally:
            with engine.begin() as connection:
                for statement in _ALLOW[backend]:
                    connection.execute(text(statement))
            engine.dispose()

    assert answer.status_code == 500
    lines = logged.getvalue()
    assert "refused by a test trigger" in lines, "the reason is logged"
    assert "INSERT INTO members" in lines, "and the statement"
    for private in (EMAIL, "+442079460777", NAME):
        assert private not in lines
        assert private not in answer.get_data(as_text=True)
