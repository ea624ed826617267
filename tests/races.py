"""Racing tills on PostgreSQL: real threads, real connections, committed transactions, released
together by a barrier. Shared by the race tests of every concept."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.clock import FixedClock
from loyalty.db import make_engine
from loyalty.members.models import Member
from loyalty.program import ensure_program
from loyalty.settings import LookupKeys
from server.app import create_app
from server.core.extensions import db
from tests.conftest import START, app_settings, drop_postgres_database, fresh_postgres_database
from tests.conftest import unique as unique_code
from tests.factories import Till, give_points, make_member, make_till, qr_of

T = TypeVar("T")


@pytest.fixture(scope="module")
def race_url(backend: str) -> Iterator[str]:
    """A database of its own: these tests commit, and must leave the shared one as it was."""
    if backend != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL; SQLite serialises every writer")
    url = fresh_postgres_database("race")
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        ensure_program(session, START)
    engine.dispose()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def race_engine(race_url: str) -> Iterator[Engine]:
    engine = make_engine(race_url)
    yield engine
    engine.dispose()


@pytest.fixture
def live_app(race_url: str) -> Iterator[Flask]:
    flask_app = create_app(app_settings(race_url), clock=FixedClock(START))
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@dataclass(frozen=True)
class Post:
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]
    method: str = "POST"


def race(app: Flask, posts: list[Post]) -> list[Any]:
    """Send every request at the same instant, each from its own thread and client."""
    barrier = threading.Barrier(len(posts))

    def run(post: Post) -> Any:
        client = app.test_client()
        barrier.wait()
        return client.open(post.path, method=post.method, headers=post.headers, json=post.body)

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        return list(pool.map(run, posts))


def race_calls(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run each call at the same instant in its own thread; what each returned or raised."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the race's outcome is what each got
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def committed_till_and_member(
    engine: Engine, keys: LookupKeys, points: int = 0
) -> tuple[Till, Member, str]:
    clock = FixedClock(START)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        till = make_till(session, clock, store_code=unique_code("RACE"))
        member, card = make_member(session, keys, clock, store_id=till.terminal.store_id)
        if points:
            give_points(session, member.id, points, clock.now())
    return till, member, qr_of(card, keys)
