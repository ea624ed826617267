"""`loyalty offers …`, `loyalty coupons …` and `loyalty rewards …` as an operator runs them, on
SQLite and PostgreSQL (a database of the module's own: the commands commit)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from loyalty.coupons.models import Coupon, Offer
from loyalty.db import make_engine
from tests.cli import assert_clean_error, assert_ok, loyalty, migrated_database


@pytest.fixture(scope="module")
def url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with migrated_database(backend, tmp_path_factory, "coupons_cli") as database_url:
        yield database_url


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _offer(url: str, tmp_path: Path, **fields: object) -> int:
    path = tmp_path / "offer.json"
    path.write_text(json.dumps({"name": "CLI offer", "kind": "percent_off", "value": 15} | fields))
    result = loyalty(url, "offers", "add", str(path))
    assert_ok(result)
    return int(result.stdout.split()[1])


def test_codes_made_from_the_command_line_are_unique_printed_to_csv_and_show_progress(
    url: str, db: Engine, tmp_path: Path
) -> None:
    offer_id = _offer(url, tmp_path)
    out = tmp_path / "codes.csv"
    result = loyalty(
        url, "coupons", "generate", str(offer_id), "--count", "500", "--pattern", "CLI-#####",
        "--out", str(out),
    )  # fmt: skip
    assert_ok(result)
    assert "500 codes made" in result.stdout
    assert "codes" in result.stderr  # the progress bar
    codes = out.read_text().splitlines()[1:]
    assert len({line.split(",")[0] for line in codes}) == 500
    with db.connect() as connection:
        stored = connection.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.offer_id == offer_id)
        )
    assert stored == 500

    listed = loyalty(url, "offers", "list")
    assert_ok(listed)
    assert "CLI offer" in listed.stdout


def test_a_bad_offer_or_spec_is_refused_in_a_line_per_field_and_nothing_is_written(
    url: str, db: Engine, tmp_path: Path
) -> None:
    with db.connect() as connection:
        before = connection.scalar(select(func.count()).select_from(Offer))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "Bad", "kind": "percent_off", "value": 300}))
    assert_clean_error(loyalty(url, "offers", "add", str(path)), "value")
    with db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Offer)) == before

    offer_id = _offer(url, tmp_path)
    small = loyalty(url, "coupons", "generate", str(offer_id), "--count", "100", "--pattern", "#")
    assert_clean_error(small, "count")


def test_a_reward_is_added_to_the_catalogue_and_listed_with_its_stock(
    url: str, tmp_path: Path
) -> None:
    offer_id = _offer(url, tmp_path, kind="amount_off", value=500)
    added = loyalty(
        url,
        "rewards",
        "add",
        str(offer_id),
        "--name",
        "Five off",
        "--points",
        "250",
        "--stock",
        "3",
    )
    assert_ok(added)
    listed = loyalty(url, "rewards", "list")
    assert_ok(listed)
    assert "Five off" in listed.stdout
    assert "500 off the basket" in listed.stdout


def test_members_listed_in_a_file_are_given_a_coupon_once_with_progress(
    url: str, db: Engine, tmp_path: Path
) -> None:
    from loyalty.clock import FixedClock  # noqa: PLC0415
    from loyalty.db import session_scope  # noqa: PLC0415
    from loyalty.settings import LookupKeys  # noqa: PLC0415
    from tests.conftest import CARD_KEY, START  # noqa: PLC0415
    from tests.factories import make_member  # noqa: PLC0415

    keys = LookupKeys(CARD_KEY, "GB")
    with session_scope(db) as session:
        ids = [make_member(session, keys, FixedClock(START))[0].id for _ in range(3)]
    offer_id = _offer(url, tmp_path)
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(map(str, [*ids, 999_999_999])) + "\n")
    first = loyalty(url, "coupons", "assign", str(offer_id), str(listed))
    assert_ok(first)
    assert "3 assigned, 0 already had one, 1 not active members" in first.stdout
    assert "members" in first.stderr  # the progress bar
    again = loyalty(url, "coupons", "assign", str(offer_id), str(listed))
    assert "0 assigned, 3 already had one" in again.stdout
