"""The operator's `loyalty …` commands, run as a user runs them, on SQLite and PostgreSQL.

The commands commit for real, so they cannot share the rolled-back test database: every run of
this module gets a database of its own per backend (a file for SQLite, a database created on the
server for PostgreSQL), migrated by `loyalty migrate` itself.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import click
import png
import pytest
import zxingcpp
from alembic import command
from click.testing import Result
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from loyalty import migrate
from loyalty.audit.models import AuditEntry
from loyalty.cards.models import Card, CardStatus
from loyalty.cards.qr import qr_png, verify_payload
from loyalty.cli import main
from loyalty.db import make_engine
from loyalty.ledger.services import balance
from loyalty.members.models import Member
from loyalty.models import Base  # the base with every table registered on its metadata
from loyalty.program import ExpiryPolicy, Program
from loyalty.sales.models import Sale
from loyalty.staff.accounts import sign_in
from loyalty.staff.models import StaffKey
from loyalty.staff.services import authenticate_staff
from loyalty.stores.models import Store, Terminal
from loyalty.stores.services import authenticate_terminal
from tests.cli import assert_clean_error, assert_ok, loyalty
from tests.conftest import (
    CARD_KEY,
    START,
    drop_postgres_database,
    fresh_postgres_database,
    unique,
)

KEY_PATTERN = re.compile(r"lt_[0-9a-f]+_[\w-]+")
HEADER = "external_id,occurred_at,code,sku,category,quantity,unit_price,redeem_points"


# --- running the command line ------------------------------------------------------------------


def till_key(result: Result) -> str:
    keys = KEY_PATTERN.findall(result.stdout)
    assert len(keys) == 1, result.stdout
    return str(keys[0])


# --- a database of this module's own, per backend ---------------------------------------------


@contextmanager
def empty_database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'loyalty.sqlite3'}"
        return
    url = fresh_postgres_database(f"cli_{uuid.uuid4().hex[:8]}")
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: what an operator has before `loyalty migrate`."""
    with empty_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's database for the backend, migrated by the command under test."""
    with empty_database(backend, tmp_path_factory.mktemp("cli")) as database_url:
        assert_ok(loyalty(database_url, "migrate"))
        yield database_url


@pytest.fixture(scope="module")
def db(url: str) -> Iterator[Engine]:
    """For looking at what the commands left behind (and for corrupting it on purpose)."""
    engine = make_engine(url)
    yield engine
    engine.dispose()


def counts(engine: Engine, *tables: str) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}  # noqa: S608 - fixed names


def demo_member(engine: Engine, name: str = "Ada Lovelace") -> tuple[int, str]:
    """A seeded member's id and the number of their card."""
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.name == name)).one()
        card = session.scalars(
            select(Card).where(Card.member_id == member.id, Card.status == CardStatus.ACTIVE)
        ).one()
        return member.id, card.number


def available_points(engine: Engine, member_id: int) -> int:
    with Session(engine) as session:
        return balance(session, member_id).available


def store_sales(engine: Engine, store_code: str) -> dict[str, Sale]:
    with Session(engine) as session:
        sales = session.scalars(
            select(Sale).join(Store, Store.id == Sale.store_id).where(Store.code == store_code)
        ).all()
        for sale in sales:
            _ = sale.lines  # loaded before the session closes
        return {sale.external_id: sale for sale in sales}


def luhn_valid(number: str) -> bool:
    """The check, written out again here rather than trusting the code under test."""
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def decode_png(image: bytes) -> list[str]:
    """Read the PNG with pypng (a dependency already) and scan it with ZXing."""
    width, height, pixels, _info = png.Reader(bytes=image).asRGB8()
    grey = bytearray()
    for row in pixels:
        grey.extend(row[0::3])
    found = zxingcpp.read_barcodes(memoryview(bytes(grey)).cast("B", (height, width)))
    return [barcode.text for barcode in found]


# --- migrate ----------------------------------------------------------------------------------


def test_migrate_creates_every_table_is_safe_to_run_twice_and_sets_the_default_program(
    empty_url: str,
) -> None:
    first = loyalty(empty_url, "migrate")
    second = loyalty(empty_url, "migrate")

    assert_ok(first)
    assert_ok(second)
    head = migrate.head_revision()
    assert first.stdout.strip() == f"database created (revision {head})"
    assert second.stdout.strip() == f"database already current (revision {head})"
    engine = make_engine(empty_url)
    try:
        inspector = inspect(engine)
        assert set(Base.metadata.tables) <= set(inspector.get_table_names())
        for name, table in Base.metadata.tables.items():
            columns = {column["name"] for column in inspector.get_columns(name)}
            assert columns == set(table.columns.keys()), name
        with Session(engine) as session:
            programs = session.scalars(select(Program)).all()
    finally:
        engine.dispose()
    assert len(programs) == 1
    program = programs[0]
    assert program.currency == "EUR"
    assert (program.earn_points, program.earn_per_minor) == (1, 100)  # 1 point per 1.00
    assert (program.redeem_points, program.redeem_value_minor) == (100, 100)  # 100 points = 1.00
    assert program.pending_days == 0
    assert program.expiry_policy == ExpiryPolicy.MONTHS_AFTER_EARNING_MONTH
    assert program.expiry_months == 12


def test_migrate_says_from_which_revision_it_upgraded(empty_url: str) -> None:
    command.upgrade(migrate.alembic_config(empty_url), "0006")

    result = loyalty(empty_url, "migrate")

    assert_ok(result)
    head = migrate.head_revision()
    assert result.stdout.strip() == f"database upgraded from revision 0006 to {head}"


def test_a_command_run_before_migrate_says_to_migrate_instead_of_a_traceback(
    empty_url: str,
) -> None:
    result = loyalty(empty_url, "check-ledger")

    assert_clean_error(result, "run `loyalty migrate` first")


# --- seed-demo --------------------------------------------------------------------------------

SEEDED_TABLES = ("members", "cards", "sales", "point_entries", "stores", "terminals")


def test_seeding_the_demo_twice_duplicates_nothing_and_keeps_the_till_key_it_printed(
    url: str, db: Engine, tmp_path: Path
) -> None:
    instance = {"LOYALTY_INSTANCE_PATH": str(tmp_path)}
    first = loyalty(url, "seed-demo", **instance)
    assert_ok(first)
    before = counts(db, *SEEDED_TABLES)

    second = loyalty(url, "seed-demo", **instance)

    assert_ok(second)
    assert "demo store DEMO-01: already there; 4 members" in second.stdout
    assert counts(db, *SEEDED_TABLES) == before
    assert before["members"] >= 4
    assert before["sales"] >= 25
    assert till_key(first) == till_key(second), "a second `make run` prints the same key"
    assert "(unchanged," in second.stdout
    staff_key = (tmp_path / "demo-staff-key").read_text().strip()
    assert staff_key not in first.stdout, "the staff key is kept in the file, not printed"
    with Session(db) as session:
        terminal = authenticate_terminal(session, till_key(second))
        assert terminal is not None
        assert session.get(Store, terminal.store_id).code == "DEMO-01"
        staff = authenticate_staff(session, staff_key)
        assert staff is not None
        assert {"members", "rules", "reports"} <= staff.scopes
        demo_keys = session.scalars(
            select(StaffKey).where(StaffKey.name == "Demo console", StaffKey.revoked_at.is_(None))
        ).all()
        assert len(demo_keys) == 1, "a second seed keeps the staff key too"
        password = (tmp_path / "demo-cashier-password").read_text().strip()
        assert password not in first.stdout
        cashier = sign_in(session, "demo.cashier", password, now=START)
        assert cashier.store_id == terminal.store_id, "the demo cashier works the demo till"


def test_seed_demo_with_new_key_replaces_the_till_key(url: str, db: Engine, tmp_path: Path) -> None:
    instance = {"LOYALTY_INSTANCE_PATH": str(tmp_path)}
    old_key = till_key(loyalty(url, "seed-demo", **instance))

    renewed = loyalty(url, "seed-demo", "--new-key", **instance)

    assert_ok(renewed)
    new_key = till_key(renewed)
    assert new_key != old_key
    with Session(db) as session:
        assert authenticate_terminal(session, old_key) is None
        assert authenticate_terminal(session, new_key) is not None
        old_staff_keys = session.scalars(
            select(StaffKey).where(StaffKey.name == "Demo console", StaffKey.revoked_at.is_(None))
        ).all()
        assert len(old_staff_keys) == 1, "the earlier demo staff key is revoked"
    assert till_key(loyalty(url, "seed-demo", **instance)) == new_key


# --- stores and tills -------------------------------------------------------------------------


def test_an_operator_lists_tills_rotates_a_key_with_grace_and_revokes_a_till(
    url: str, db: Engine
) -> None:
    code = unique("ROT")
    assert_ok(loyalty(url, "create-store", code, "Rotation Road"))
    old_key = till_key(loyalty(url, "create-terminal", code, "Till 1"))
    with Session(db) as session:
        terminal = authenticate_terminal(session, old_key)
        assert terminal is not None
    listed = loyalty(url, "terminals")
    assert_ok(listed)
    assert re.search(rf"^\s*{terminal.id}\s+{code}\s+Till 1\s", listed.stdout, re.MULTILINE)

    rotated = loyalty(url, "rotate-terminal-key", str(terminal.id), "--grace-minutes", "30")

    assert_ok(rotated)
    new_key = till_key(rotated)
    assert "the old key works until" in rotated.stdout
    with Session(db) as session:
        assert authenticate_terminal(session, new_key) is not None
        assert authenticate_terminal(session, old_key) is not None, "during the grace period"
        later = datetime.now(UTC) + timedelta(minutes=31)
        assert authenticate_terminal(session, old_key, now=later) is None

    revoked = loyalty(url, "revoke-terminal", str(terminal.id))

    assert_ok(revoked)
    with Session(db) as session:
        assert authenticate_terminal(session, new_key) is None
        assert authenticate_terminal(session, old_key) is None
    assert "revoked" in loyalty(url, "terminals").stdout
    assert_clean_error(loyalty(url, "revoke-terminal", "99999999"), "no terminal has id 99999999")


def test_an_operator_lists_staff_keys_without_their_secrets(url: str, db: Engine) -> None:
    name = unique("console")
    made = loyalty(url, "create-staff-key", name, "--scope", "rules", "--scope", "reports")
    assert_ok(made)
    secret = made.stdout.rsplit(": ", 1)[1].strip()

    listed = loyalty(url, "staff-keys")

    assert_ok(listed)
    line = next(line for line in listed.stdout.splitlines() if name in line)
    assert "reports,rules" in line
    assert secret not in listed.stdout


def test_a_new_store_and_till_get_a_key_printed_once_that_works_for_that_store(
    url: str, db: Engine
) -> None:
    code = unique("LDN")

    store = loyalty(url, "create-store", code, "London Bridge")
    till = loyalty(url, "create-terminal", code, "Till 1")

    assert_ok(store)
    assert f"store {code} created" in store.stdout
    assert_ok(till)
    key = till_key(till)
    assert till.output.count(key) == 1
    with Session(db) as session:
        terminal = authenticate_terminal(session, key)
        assert terminal is not None
        assert session.get(Store, terminal.store_id).code == code
        stored = session.get(Terminal, terminal.id)
        assert stored.name == "Till 1"
        assert key.rsplit("_", 1)[1] not in stored.key_hash  # only a hash is kept
        assert authenticate_terminal(session, key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_a_store_code_already_in_use_is_refused_cleanly_and_changes_nothing(
    url: str, db: Engine
) -> None:
    code = unique("MAN")
    assert_ok(loyalty(url, "create-store", code, "Manchester"))
    before = counts(db, "stores")

    again = loyalty(url, "create-store", code, "Manchester again")

    assert_clean_error(again, f"a store with code {code!r} exists already")
    assert counts(db, "stores") == before
    with Session(db) as session:
        assert session.scalars(select(Store.name).where(Store.code == code)).one() == "Manchester"


def test_a_till_for_an_unknown_store_is_refused_cleanly(url: str) -> None:
    result = loyalty(url, "create-terminal", "NO-SUCH-STORE", "Till 1")

    assert_clean_error(result, "no store has code 'NO-SUCH-STORE'")
    assert not KEY_PATTERN.search(result.output)


# --- printed cards ----------------------------------------------------------------------------


def test_a_batch_of_cards_is_written_for_the_printer_with_valid_numbers_and_scannable_codes(
    url: str, db: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "cards.csv"

    result = loyalty(url, "create-cards", "25", "--out", str(out))

    assert_ok(result)
    assert f"25 cards written to {out}" in result.stdout
    assert [path.name for path in tmp_path.iterdir()] == ["cards.csv"]
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["card_number", "printed_number", "qr_payload"]
    cards = rows[1:]
    assert len(cards) == 25
    numbers = [number for number, _printed, _payload in cards]
    assert len(set(numbers)) == 25
    for number, printed, payload in cards:
        assert re.fullmatch(r"\d{16}", number)
        assert luhn_valid(number), number
        assert printed.replace(" ", "") == number
        assert verify_payload((CARD_KEY,), payload) == number
    with Session(db) as session:
        stored = session.scalars(select(Card).where(Card.number.in_(numbers))).all()
    assert len(stored) == 25
    assert {card.status for card in stored} == {CardStatus.UNASSIGNED}
    assert {card.member_id for card in stored} == {None}
    assert len({card.batch_id for card in stored}) == 1
    payload = cards[0][2]
    assert decode_png(qr_png(payload)) == [payload]


def test_a_card_batch_that_cannot_be_written_is_refused_and_creates_no_cards(
    url: str, db: Engine, tmp_path: Path
) -> None:
    before = counts(db, "cards", "card_batches")

    result = loyalty(url, "create-cards", "3", "--out", str(tmp_path / "no-such-dir" / "c.csv"))

    assert_clean_error(result, "cannot write")
    assert counts(db, "cards", "card_batches") == before


# --- import-transactions ----------------------------------------------------------------------


def write_csv(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0).isoformat()


@pytest.fixture
def import_store(url: str) -> str:
    """A store of its own for each import test, and the demo members to buy in it."""
    assert_ok(loyalty(url, "seed-demo"))
    code = unique("IMP")
    assert_ok(loyalty(url, "create-store", code, "Import test store"))
    return code


def test_imported_sales_earn_the_right_points_and_importing_again_records_nothing_new(
    url: str, db: Engine, import_store: str, tmp_path: Path
) -> None:
    member_id, card_number = demo_member(db)
    points_before = available_points(db, member_id)
    when = days_ago(3)
    sales = write_csv(
        tmp_path / "sales.csv",
        HEADER,
        f"S-1,{when},{card_number},MILK,dairy,2,125,",
        f"S-1,{when},{card_number},COFFEE,pantry,1,899,",  # 11.49 -> 11 points
        f"S-2,{when},,BREAD,bakery,1,250,",
        f"S-2,{when},,APPLES,produce,3,60,",  # anonymous: recorded, earns nothing
        f"S-3,{when},{card_number},WINE,drinks,2,1299,",
        f"S-3,{when},{card_number},CHEESE,dairy,1,475,",
        f"S-3,{when},{card_number},SOAP,household,1,199,",  # 32.72 -> 32 points
    )

    first = loyalty(url, "import-transactions", str(sales), "--store", import_store)

    assert_ok(first)
    assert "3 sales recorded, 0 already there, 0 refused" in first.stdout
    assert "importing sales" in first.stderr  # the progress bar, kept off stdout
    assert "importing sales" not in first.stdout
    recorded = store_sales(db, import_store)
    assert set(recorded) == {"S-1", "S-2", "S-3"}
    assert [len(recorded[s].lines) for s in ("S-1", "S-2", "S-3")] == [2, 2, 3]
    assert (recorded["S-1"].member_id, recorded["S-1"].total, recorded["S-1"].points_earned) == (
        member_id,
        1149,
        11,
    )
    assert (recorded["S-2"].member_id, recorded["S-2"].total, recorded["S-2"].points_earned) == (
        None,
        430,
        0,
    )
    assert (recorded["S-3"].member_id, recorded["S-3"].total, recorded["S-3"].points_earned) == (
        member_id,
        3272,
        32,
    )
    assert available_points(db, member_id) == points_before + 43
    entries_after_first = counts(db, "sales", "sale_lines", "point_entries")

    again = loyalty(url, "import-transactions", str(sales), "--store", import_store)

    assert_ok(again)
    assert "0 sales recorded, 3 already there, 0 refused" in again.stdout
    assert counts(db, "sales", "sale_lines", "point_entries") == entries_after_first
    assert available_points(db, member_id) == points_before + 43


def test_bad_rows_are_reported_by_row_number_and_reason_and_the_good_sales_are_kept(
    url: str, db: Engine, import_store: str, tmp_path: Path
) -> None:
    member_id, card_number = demo_member(db, "Grace Hopper")
    points_before = available_points(db, member_id)
    unknown_card = "900000000000000" + next(
        d for d in "0123456789" if luhn_valid("900000000000000" + d)
    )
    when, future = days_ago(2), (datetime.now(UTC) + timedelta(days=30)).isoformat()
    sales = write_csv(
        tmp_path / "sales.csv",
        HEADER,
        f"G-1,{when},{card_number},MILK,dairy,2,125,",  # row 2
        f"G-1,{when},{card_number},BREAD,bakery,1,250,",  # row 3
        f"B-QTY,{when},,MILK,dairy,1,125,",  # row 4
        f"B-QTY,{when},,BREAD,bakery,two,250,",  # row 5: the bad line of a good-looking sale
        f"B-CARD,{when},{unknown_card},MILK,dairy,1,125,",  # row 6
        f"B-DATE,{future},,MILK,dairy,1,125,",  # row 7
        f"B-COL,{when},,MILK",  # row 8: quantity and unit_price left out
        f"G-2,{when},{card_number},COFFEE,pantry,1,899,",  # row 9
        f"B-LONG,{when},,{'X' * 65},dairy,1,125,",  # row 10: longer than the database holds
        f"B-NEG,{when},{card_number},MILK,dairy,1,125,-100",  # row 11: "redeeming" -100 points
        f"G-1,{when},{card_number},EXTRA,dairy,1,100,",  # row 12: G-1 again, out of place
    )

    result = loyalty(url, "import-transactions", str(sales), "--store", import_store)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 sales recorded, 0 already there, 7 refused" in result.stdout
    assert "row 5 (sale B-QTY): quantity is not a whole number: 'two'" in result.stderr
    assert "row 6 (sale B-CARD): no card has this number" in result.stderr
    assert "row 7 (sale B-DATE): the sale is dated in the future" in result.stderr
    assert "row 8 (sale B-COL): quantity is missing" in result.stderr
    assert "row 10 (sale B-LONG): sku is longer than 64 characters" in result.stderr
    assert "row 11 (sale B-NEG): redeem_points must be from 0 to" in result.stderr
    assert (
        "row 12 (sale G-1): the rows of a sale must follow each other; this sale began at row 2"
        in result.stderr
    )
    assert set(store_sales(db, import_store)) == {"G-1", "G-2"}
    assert available_points(db, member_id) == points_before + 5 + 8


def test_a_file_without_a_required_column_is_refused_before_anything_is_recorded(
    url: str, db: Engine, import_store: str, tmp_path: Path
) -> None:
    sales = write_csv(
        tmp_path / "sales.csv",
        "external_id,occurred_at,code,sku,category,unit_price",
        f"N-1,{days_ago(1)},,MILK,dairy,125",
    )

    result = loyalty(url, "import-transactions", str(sales), "--store", import_store)

    assert_clean_error(result, "the file lacks the columns: quantity")
    assert store_sales(db, import_store) == {}


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_imports(
    url: str, db: Engine, import_store: str, tmp_path: Path
) -> None:
    sales = write_csv(
        tmp_path / "sales.csv",
        HEADER,
        f"X-1,{days_ago(1)},,MILK,dairy,1,125,",
        encoding="utf-8-sig",
    )

    result = loyalty(url, "import-transactions", str(sales), "--store", import_store)

    assert_ok(result)
    assert set(store_sales(db, import_store)) == {"X-1"}


def test_importing_into_an_unknown_store_is_refused_cleanly(url: str, tmp_path: Path) -> None:
    sales = write_csv(tmp_path / "sales.csv", HEADER, f"U-1,{days_ago(1)},,MILK,dairy,1,125,")

    result = loyalty(url, "import-transactions", str(sales), "--store", "NO-SUCH-STORE")

    assert_clean_error(result, "no store has code 'NO-SUCH-STORE'")


# --- check-ledger -----------------------------------------------------------------------------


def test_check_ledger_passes_a_good_database_and_names_the_member_whose_balance_is_wrong(
    url: str, db: Engine
) -> None:
    assert_ok(loyalty(url, "seed-demo"))
    member_id, _card = demo_member(db, "Alan Turing")

    good = loyalty(url, "check-ledger")

    assert_ok(good)
    assert "ledger is consistent" in good.stdout

    corrupt = text("UPDATE point_accounts SET available = available + :by WHERE member_id = :id")
    with db.begin() as conn:
        conn.execute(corrupt, {"by": 7, "id": member_id})
    try:
        bad = loyalty(url, "check-ledger")
    finally:
        with db.begin() as conn:
            conn.execute(corrupt, {"by": -7, "id": member_id})

    assert bad.exit_code == 1
    assert f"member {member_id} (Alan Turing)" in bad.stderr
    assert "consistent" not in bad.stdout
    assert_ok(loyalty(url, "check-ledger"))


def test_members_are_blocked_unblocked_and_erased_from_the_command_line(url: str, db: Engine):
    assert_ok(loyalty(url, "seed-demo"))
    with Session(db) as session:
        member = session.scalars(select(Member).where(Member.name == "Grace Hopper")).one()
    member_id = str(member.id)
    assert_ok(loyalty(url, "block-member", member_id, "--reason", "card fraud"))
    with Session(db) as session:
        assert session.get(Member, member.id).status == "blocked"
    assert_ok(loyalty(url, "unblock-member", member_id, "--reason", "cleared"))
    assert_clean_error(
        loyalty(url, "block-member", "99999999", "--reason", "x"), "no member has id 99999999"
    )
    assert_ok(loyalty(url, "erase-member", member_id, "--reason", "GDPR-42", "--yes"))
    with Session(db) as session:
        erased = session.get(Member, member.id)
        assert (erased.status, erased.name, erased.email) == ("erased", "(erased)", None)
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.subject_type == "member",
                AuditEntry.subject_id == member_id,
                AuditEntry.actor.like("cli:%"),
            )
        ).all()
    assert {"member.block", "member.unblock", "member.erase"} <= set(actions)


# --- the commands themselves ------------------------------------------------------------------


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, found in sorted(group.commands.items()):
        yield f"{prefix}{name}", found
        if isinstance(found, click.Group):
            yield from _commands(found, f"{prefix}{name} ")


def test_every_command_says_what_it_does_in_one_whole_sentence() -> None:
    listed = loyalty("sqlite://", "--help").stdout + loyalty("sqlite://", "rules", "--help").stdout
    listed += loyalty("sqlite://", "tiers", "--help").stdout
    listing = [line for line in listed.splitlines() if line.startswith("  ")]
    assert [line for line in listing if line.endswith("...")] == [], "a help cut short"
    for name, found in _commands(main):
        short = found.get_short_help_str(limit=1000)
        assert short == found.get_short_help_str(limit=55), f"{name}: too long for the list"
        assert short[0].isupper(), name
        assert short.endswith("."), name
        assert short.count(". ") == 0, f"{name}: one sentence"


def test_loyalty_version_prints_the_installed_version() -> None:
    result = loyalty("sqlite://", "--version")
    assert_ok(result)
    assert result.stdout.strip() == f"loyalty {version('loyalty')}"


def test_python_dash_m_runs_every_command_as_the_script_does(url: str, tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "LOYALTY_DATABASE_URL": url,
        "LOYALTY_SECRET_KEY": "test-secret",
        "LOYALTY_INSTANCE_PATH": str(tmp_path),
    }
    expired = subprocess.run(
        [sys.executable, "-m", "loyalty.cli", "expire-points"],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert expired.returncode == 0, expired.stderr
    assert expired.stdout.startswith("expired "), expired.stdout
    imported = subprocess.run(
        [sys.executable, "-m", "loyalty.cli", "import-transactions", "--help"],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr


def test_backup_copies_the_embedded_database_whole_and_refuses_postgresql(
    url: str, backend: str, tmp_path: Path
) -> None:
    target = tmp_path / "backup.sqlite3"

    result = loyalty(url, "backup", str(target))

    if backend == "postgresql":
        assert_clean_error(result, "pg_dump")
        assert not target.exists()
        return
    assert_ok(result)
    assert result.stdout.startswith("backed up ")
    copy = make_engine(f"sqlite:///{target}")
    original = make_engine(url)
    try:
        with copy.connect() as restored, original.connect() as live:
            for table in ("members", "sales", "point_entries", "alembic_version"):
                count = f"SELECT count(*) FROM {table}"  # noqa: S608 - our table names
                assert restored.execute(text(count)).scalar() == live.execute(text(count)).scalar()
    finally:
        copy.dispose()
        original.dispose()
    assert not (tmp_path / "backup.sqlite3.partial").exists()
