"""The rules of referrals that need no database: codes, how contacts are compared, the chain of
referrers, calendar months and days in the program's zone, what each side is given, which
settings are refused."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.referrals.models import ContactKind
from loyalty.referrals.services import (
    ALPHABET,
    CODE_LENGTH,
    ReferralTerms,
    canonical_email,
    contact_digest,
    contact_digests,
    day_bounds,
    is_circular,
    is_well_formed,
    month_start,
    new_code,
    normalise_code,
    payment_digest,
    terms_problems,
)

KEY = "unit-test-key"


def seeded() -> random.Random:
    return random.Random(20260314)  # noqa: S311 - reproducible draws for shape tests


# Codes


def test_a_new_code_is_eight_characters_of_an_alphabet_without_look_alikes():
    rng = seeded()
    codes = {new_code(rng.choice) for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(code) == CODE_LENGTH and is_well_formed(code) for code in codes)
    assert not set("ILOU") & set("".join(codes))
    assert set(ALPHABET) == set("".join(codes))


def test_a_code_typed_in_lower_case_with_spaces_dashes_and_look_alikes_reads_as_printed():
    assert normalise_code(" 7k3m-9qxd ") == "7K3M9QXD"
    assert normalise_code("o1lu-abcd") == "011VABCD"
    assert normalise_code("ABCD_EFGH") == "ABCDEFGH"


def test_only_eight_characters_of_the_alphabet_can_be_a_code():
    assert is_well_formed("7K3M9QXD")
    assert not is_well_formed("7K3M9QX")  # too short
    assert not is_well_formed("7K3M9QXDD")  # too long
    assert not is_well_formed("7K3M9QX!")
    assert not is_well_formed("7k3m9qxd")  # normalise first


def test_a_pasted_novel_is_cut_to_what_a_code_column_holds():
    assert len(normalise_code("x" * 10_000)) == 32


# Contacts


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Mary@Example.com", "mary@example.com"),
        ("mary+friends@example.com", "mary@example.com"),
        ("Mary.Seacole+x@GoogleMail.com", "maryseacole@gmail.com"),
        ("m.a.r.y@gmail.com", "mary@gmail.com"),
        ("mary.seacole@example.com", "mary.seacole@example.com"),  # dots matter elsewhere
    ],
)
def test_emails_are_compared_without_case_tags_and_gmails_dots(typed, canonical):
    assert canonical_email(typed) == canonical


def test_two_spellings_of_one_email_give_one_digest_and_other_contacts_another():
    same = contact_digest(KEY, ContactKind.EMAIL, "Mary+ref@example.com")
    assert same == contact_digest(KEY, ContactKind.EMAIL, "mary@example.com")
    assert same != contact_digest(KEY, ContactKind.EMAIL, "marie@example.com")
    assert same != contact_digest("another-key", ContactKind.EMAIL, "mary@example.com")


def test_a_digest_shows_nothing_of_the_contact():
    digest = contact_digest(KEY, ContactKind.PHONE, "+442079460018")
    assert len(digest) == 64
    assert "2079460018" not in digest
    assert digest != contact_digest(KEY, ContactKind.EMAIL, "+442079460018")


def test_the_digests_of_a_member_leave_out_the_contacts_they_do_not_have():
    digests = contact_digests(KEY, emails=[None, "a@example.com"], phones=[None, ""])
    assert digests == {contact_digest(KEY, ContactKind.EMAIL, "a@example.com")}


def test_a_payment_fingerprint_is_kept_as_a_digest_only():
    digest = payment_digest("tok_visa_4242")
    assert digest == payment_digest(" tok_visa_4242 ")
    assert "4242" not in digest
    assert digest != payment_digest("tok_visa_4243")


# The chain of referrers


def _chain(referred_by: dict[int, int]):
    return referred_by.get


def test_a_friend_who_referred_their_referrer_is_circular():
    assert is_circular(1, 2, _chain({2: 1}), depth=10)


def test_a_friend_up_the_chain_of_referrers_is_circular():
    # 1 referred 2, 2 referred 3, 3 referred 4: 1 enrolling with 4's code closes a circle
    assert is_circular(1, 4, _chain({2: 1, 3: 2, 4: 3}), depth=10)


def test_a_chain_longer_than_the_depth_looked_at_is_not_circular():
    chain = {n + 1: n for n in range(1, 20)}  # 1 referred 2, ..., 19 referred 20
    assert not is_circular(1, 20, _chain(chain), depth=10)
    assert is_circular(1, 20, _chain(chain), depth=19)


def test_a_friend_outside_the_chain_is_not_circular():
    assert not is_circular(9, 4, _chain({2: 1, 3: 2, 4: 3}), depth=10)
    assert not is_circular(9, 4, _chain({}), depth=10)


# Months and days in the program's zone


def test_the_calendar_month_starts_at_local_midnight_of_the_first():
    auckland = ZoneInfo("Pacific/Auckland")
    # 1 March 01:00 in Auckland is still February in UTC: the month is already March there
    now = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert month_start(now, auckland) == datetime(2026, 2, 28, 11, 0, tzinfo=UTC)
    assert month_start(now, ZoneInfo("UTC")) == datetime(2026, 2, 1, tzinfo=UTC)


def test_days_run_from_local_midnight_to_the_midnight_after_the_last_day():
    london = ZoneInfo("Europe/London")
    start, end = day_bounds(date(2026, 7, 1), date(2026, 7, 31), london)
    assert start == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)  # BST
    assert end == datetime(2026, 7, 31, 23, 0, tzinfo=UTC)


# What each side is given


def test_each_side_gets_points_unless_an_offer_gives_it_a_coupon():
    terms = ReferralTerms(referrer_points=500, referee_points=250)
    assert terms.reward_of(referrer=True) == (500, None)
    assert terms.reward_of(referrer=False) == (250, None)
    coupon_for_friend = ReferralTerms(referee_offer_id=7)
    assert coupon_for_friend.reward_of(referrer=True) == (500, None)
    assert coupon_for_friend.reward_of(referrer=False) == (0, 7)


def test_the_default_terms_are_those_of_the_brief():
    terms = ReferralTerms()
    assert terms.enabled
    assert (terms.min_purchase, terms.qualify_within_days) == (1000, 30)
    assert (terms.referrer_points, terms.referee_points) == (500, 250)
    assert (terms.monthly_cap, terms.reversal_window_days) == (10, 30)


# Settings refused


def test_valid_changes_of_the_terms_have_no_problems():
    assert terms_problems({"enabled": False, "monthly_cap": None, "referee_offer_id": 3}) == {}
    assert terms_problems({"min_purchase": 0, "reversal_window_days": 0}) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"referrer_points": -1}, "referrer_points"),
        ({"min_purchase": 10**11}, "min_purchase"),
        ({"qualify_within_days": 0}, "qualify_within_days"),
        ({"monthly_cap": 0}, "monthly_cap"),
        ({"referee_points": None}, "referee_points"),
        ({"referee_points": True}, "referee_points"),
        ({"referee_points": "250"}, "referee_points"),
        ({"enabled": 1}, "enabled"),
        ({"referrer_offer_id": 0}, "referrer_offer_id"),
        ({"bonus": 5}, "bonus"),
    ],
)
def test_out_of_range_wrong_type_and_unknown_settings_are_refused_by_field(changes, field):
    assert list(terms_problems(changes)) == [field]
