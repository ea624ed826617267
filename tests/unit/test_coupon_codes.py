"""Coupon codes: normalisation, generation, check characters, spec validation. No database."""

from __future__ import annotations

import random
import re
import secrets
from collections import Counter

import pytest

from loyalty.coupons.codes import (
    DEFAULT_CHARSET,
    LOOK_ALIKES,
    CodeSpec,
    check_character,
    display_to_key,
    has_valid_check,
    lookup_forms,
    normalise_code,
)
from loyalty.errors import InvalidInput

FULL_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def seeded() -> random.Random:
    return random.Random(20240601)  # noqa: S311 - reproducible draws for shape tests


def errors_of(spec: CodeSpec, count: int = 1) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        spec.validate(count)
    return caught.value.errors


# Normalisation


def test_a_code_typed_with_spaces_lower_case_and_look_alikes_finds_the_same_key():
    printed = "01AB-V1Z0"
    key = display_to_key(printed, DEFAULT_CHARSET)
    assert key == "01ABV1Z0"
    for typed in ("01ab-v1z0", " oIAB - ulzO ", "OLab\tV1Z0", "o1ab_u1z0\n"):
        assert key in lookup_forms(typed), typed


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("abcd", "ABCD"),
        ("  ab cd\tef \n", "ABCDEF"),
        ("AB-CD_EF", "ABCDEF"),
        ("AB\u00a0CD", "ABCD"),  # a no-break space pasted from an e-mail
        ("AB\u200bCD", "ABCD"),  # a zero-width space, likewise
    ],
)
def test_case_spaces_dashes_and_underscores_never_matter(typed: str, key: str):
    assert normalise_code(typed) == key
    assert normalise_code(typed, None) == key


@pytest.mark.parametrize(
    "dash", ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"]
)
def test_unicode_dashes_a_phone_or_word_processor_puts_in_are_dropped(dash: str):
    assert normalise_code(f"AB{dash}CD{dash}{dash}EF") == "ABCDEF"


def test_look_alikes_outside_the_default_charset_are_read_as_the_character_in_it():
    assert normalise_code("o-i-l-u") == "011V"


def test_look_alikes_that_are_in_the_charset_are_kept_as_typed():
    assert normalise_code("o-i-l-u", FULL_ALPHANUMERIC) == "OILU"


def test_a_look_alike_is_not_mapped_to_a_character_the_charset_lacks_either():
    assert normalise_code("oily", "ABCXY") == "OILY"


def test_a_charset_given_in_lower_case_maps_look_alikes_the_same_way():
    assert normalise_code("ol", DEFAULT_CHARSET.lower()) == "01"


def test_without_a_charset_nothing_is_mapped():
    assert normalise_code("summer-10 ", None) == "SUMMER10"


def test_a_shared_code_with_letters_outside_the_charset_is_looked_up_unmangled_first():
    assert lookup_forms("summer-10 ") == ("SUMMER10", "SVMMER10")
    assert lookup_forms("HOLIDAY") == ("HOLIDAY", "H011DAY")


def test_a_code_with_no_look_alike_has_a_single_lookup_form():
    assert lookup_forms("ab-cd 12") == ("ABCD12",)


def test_nothing_but_separators_gives_nothing_to_look_up():
    assert lookup_forms(" - _ ") == ()


def test_the_default_charset_is_crockford_base32_without_any_look_alike_pair():
    assert len(DEFAULT_CHARSET) == len(set(DEFAULT_CHARSET)) == 32
    assert set(DEFAULT_CHARSET).isdisjoint("ILOU")
    for typed, meant in LOOK_ALIKES.items():
        assert typed not in DEFAULT_CHARSET
        assert meant in DEFAULT_CHARSET


def test_a_printed_code_and_its_key_differ_only_by_separators():
    spec = CodeSpec(pattern="SUM-####-####")
    for code in spec.batch(50, seeded()):
        key = display_to_key(code, DEFAULT_CHARSET)
        assert "-" not in key
        assert key == code.replace("-", "").replace("U", "V")  # SUM: U read as V, as typed


# Generation


def test_a_pattern_keeps_its_literals_and_fills_each_hash_with_a_charset_character():
    spec = CodeSpec(pattern="SUM-####-####", prefix="W24", postfix="-X")
    spec.validate(1000)
    one = f"[{DEFAULT_CHARSET}]"
    for code in spec.batch(200, seeded()):
        assert re.fullmatch(f"W24SUM-{one}{{4}}-{one}{{4}}-X", code), code


def test_braces_in_a_pattern_are_printed_as_they_are():
    spec = CodeSpec(pattern="{##}-{}##")
    spec.validate()
    for code in spec.batch(20, seeded()):
        assert re.fullmatch(
            f"\\{{[{DEFAULT_CHARSET}]{{2}}\\}}-\\{{\\}}[{DEFAULT_CHARSET}]{{2}}", code
        )


def test_a_length_gives_that_many_charset_characters():
    spec = CodeSpec(length=10)
    spec.validate()
    codes = spec.batch(200, seeded())
    assert len(codes) == 200
    assert all(len(code) == 10 and set(code) <= set(DEFAULT_CHARSET) for code in codes)


def test_generate_makes_one_code_like_batch_does():
    spec = CodeSpec(length=8, prefix="P-")
    code = spec.generate(secrets.SystemRandom())
    assert re.fullmatch(f"P-[{DEFAULT_CHARSET}]{{8}}", code)


def test_a_custom_charset_is_the_only_source_of_random_characters():
    spec = CodeSpec(pattern="####-####", charset="abcd1234")
    spec.validate()
    codes = spec.batch(500, seeded())
    assert {char for code in codes for char in code} == set("ABCD1234-")


def test_the_same_seed_gives_the_same_codes():
    spec = CodeSpec(pattern="##-##-##", check_character=True)
    assert spec.batch(10, seeded()) == spec.batch(10, seeded())


def test_a_batch_of_zero_is_empty():
    assert CodeSpec(length=8).batch(0, seeded()) == []


def test_random_positions_and_capacity_follow_the_spec():
    assert CodeSpec(pattern="SUM-####-##").random_positions == 6
    assert CodeSpec(pattern="SUM-####-##").capacity() == 32**6
    assert CodeSpec(length=5, charset="0123456789").capacity() == 10**5


def test_twenty_thousand_codes_of_eight_characters_do_not_repeat():
    # 32**8 is about 1.1e12: a repeat among 20,000 codes has a chance of about 1.8e-4
    codes = CodeSpec(length=8).batch(20_000, secrets.SystemRandom())
    assert len(set(codes)) == len(codes)


def test_every_character_is_about_as_likely_at_every_position():
    codes = CodeSpec(length=8).batch(32_000, secrets.SystemRandom())
    for position in range(8):
        counts = Counter(code[position] for code in codes)
        assert set(counts) == set(DEFAULT_CHARSET)
        # 1,000 expected each, standard deviation about 31: 800..1,200 is over 6 of them
        assert all(800 <= n <= 1200 for n in counts.values()), counts


class _EveryByteOnce(random.Random):
    """Hands out the byte values 0, 1, ..., 255, 0, 1, ... in order."""

    def __init__(self) -> None:
        super().__init__(0)
        self.next_byte = 0

    def randbytes(self, n: int) -> bytes:
        out = bytes((self.next_byte + i) % 256 for i in range(n))
        self.next_byte = (self.next_byte + n) % 256
        return out


def test_a_charset_whose_size_does_not_divide_256_is_drawn_without_bias():
    # bytes 250..255 would favour 0..5 if they were kept: they are thrown away instead
    codes = CodeSpec(length=5, charset="0123456789").batch(50, _EveryByteOnce())
    counts = Counter("".join(codes))
    assert counts == dict.fromkeys("0123456789", 25)


# Check character


SAMPLE_BODIES = ["1234ABCD", "Z0Z0Z0Z0", "00000000", "ZZZZYYYY", "7KX3-9QPM", "SUM-4V2R"]


def with_check(body: str, charset: str = DEFAULT_CHARSET) -> str:
    return display_to_key(body, charset) + check_character(body, charset)


def test_a_generated_code_carries_a_valid_check_character_at_its_end():
    spec = CodeSpec(pattern="SUM-####-####", prefix="W1", postfix="-X", check_character=True)
    spec.validate(1000)
    for code in spec.batch(300, seeded()):
        assert has_valid_check(code, DEFAULT_CHARSET), code
        assert code[-1] == check_character(code[:-1], DEFAULT_CHARSET)


def test_the_check_character_skips_dashes_and_reads_look_alikes_as_they_are_meant():
    assert check_character("SUM-4V2R", DEFAULT_CHARSET) == check_character(
        "svm4v2r", DEFAULT_CHARSET
    )
    code = with_check("1O2L")
    assert has_valid_check(code.lower().replace("0", "o"), DEFAULT_CHARSET)


def test_the_check_character_of_the_wikipedia_example():
    # https://en.wikipedia.org/wiki/Luhn_mod_N_algorithm: "abcdef" over a-f gives "e"
    assert check_character("abcdef", "abcdef") == "E"


@pytest.mark.parametrize("body", SAMPLE_BODIES)
def test_every_single_wrong_character_is_caught(body: str):
    code = with_check(body)
    assert has_valid_check(code, DEFAULT_CHARSET)
    for position, right in enumerate(code):
        for wrong in DEFAULT_CHARSET.replace(right, ""):
            typo = code[:position] + wrong + code[position + 1 :]
            assert not has_valid_check(typo, DEFAULT_CHARSET), typo


@pytest.mark.parametrize("body", [*SAMPLE_BODIES, "A0ZB", "0ZZ0"])
def test_every_swap_of_two_adjacent_characters_is_caught_but_0_and_z(body: str):
    code = with_check(body)
    for position in range(len(code) - 1):
        first, second = code[position], code[position + 1]
        if first == second:
            continue
        swapped = code[:position] + second + first + code[position + 2 :]
        blind_spot = {first, second} == {DEFAULT_CHARSET[0], DEFAULT_CHARSET[-1]}
        assert has_valid_check(swapped, DEFAULT_CHARSET) is blind_spot, swapped


def test_luhn_mod_n_cannot_tell_0z_from_z0():
    # the one adjacent swap Luhn mod 32 misses, as Luhn mod 10 misses 09/90 on card numbers
    assert check_character("A0ZB", DEFAULT_CHARSET) == check_character("AZ0B", DEFAULT_CHARSET)


def test_a_code_without_a_charset_character_at_its_end_has_no_valid_check():
    assert not has_valid_check("", DEFAULT_CHARSET)
    assert not has_valid_check("1234!", DEFAULT_CHARSET)


# Validation


def test_a_sound_spec_passes():
    CodeSpec(length=8).validate(1_000_000)
    CodeSpec(pattern="SUM-####-####", prefix="W24-", check_character=True).validate(10_000_000)
    CodeSpec(length=6, charset="abcdef0123").validate(100)


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("SUMMER", "#"),
        ("SUM ####", "whitespace"),
        ("SUM\t####", "whitespace"),
        ("#" * 65, "at most 64"),
        ("SÜM-####", "ASCII"),
        ("SUM\x00####", "ASCII"),
    ],
)
def test_a_malformed_pattern_is_refused_on_its_field(pattern: str, says: str):
    errors = errors_of(CodeSpec(pattern=pattern))
    assert set(errors) == {"pattern"}
    assert any(says in message for message in errors["pattern"]), errors


def test_a_pattern_and_a_length_together_are_refused():
    errors = errors_of(CodeSpec(pattern="####-####", length=8))
    assert errors == {"pattern": ["give a pattern or a length, not both"]}


def test_neither_a_pattern_nor_a_length_is_refused():
    assert errors_of(CodeSpec()) == {"pattern": ["give a pattern or a length"]}


@pytest.mark.parametrize("length", [0, 3, 33, -8])
def test_a_length_outside_4_to_32_is_refused(length: int):
    assert set(errors_of(CodeSpec(length=length))) == {"length"}


@pytest.mark.parametrize(
    ("charset", "says"),
    [
        ("ABCA", "A appears more than once"),
        ("aA", "A appears more than once"),
        ("abcABC", "A, B, C appear more than once"),
        ("A", "at least 2"),
        ("", "at least 2"),
        ("AB-C", "only letters A-Z and digits"),
        ("ÄBC", "only letters A-Z and digits"),
    ],
)
def test_a_bad_charset_is_refused_on_its_field(charset: str, says: str):
    errors = errors_of(CodeSpec(length=8, charset=charset))
    assert set(errors) == {"charset"}
    assert any(says in message for message in errors["charset"]), errors


def test_a_check_character_needs_a_charset_of_even_size():
    errors = errors_of(CodeSpec(length=8, charset="ABCDEFGHJ", check_character=True))
    assert errors == {
        "charset": ["a check character needs an even number of characters (Luhn mod N)"]
    }
    CodeSpec(length=8, charset="ABCDEFGHJ").validate()


@pytest.mark.parametrize("affix", ["'; DROP TABLE coupons;--", "sum", "SUM 24", "SUM_24", "X" * 17])
def test_a_prefix_or_postfix_with_other_than_capitals_digits_and_dashes_is_refused(affix: str):
    assert set(errors_of(CodeSpec(length=8, prefix=affix))) == {"prefix"}
    assert set(errors_of(CodeSpec(length=8, postfix=affix))) == {"postfix"}


@pytest.mark.parametrize("count", [0, -1, 10_000_001])
def test_a_count_outside_1_to_ten_million_is_refused(count: int):
    assert set(errors_of(CodeSpec(length=10), count)) == {"count"}


def test_a_pattern_too_small_for_the_count_names_its_capacity_and_the_fix():
    errors = errors_of(CodeSpec(pattern="SUM-##"), 1000)
    message = (
        "the pattern gives 1,024 codes; 1,000 codes need at least 10,000, "
        "so at least 3 # placeholders"
    )
    assert errors == {"count": [message]}


def test_capacity_must_be_ten_times_the_count():
    CodeSpec(length=4, charset="0123456789").validate(1000)  # 10,000 is exactly 10x
    errors = errors_of(CodeSpec(length=4, charset="0123456789"), 1001)
    message = (
        "a length of 4 gives 10,000 codes; 1,001 codes need at least 10,010, "
        "so at least a length of 5"
    )
    assert errors == {"count": [message]}


def test_a_code_longer_than_its_column_is_refused():
    errors = errors_of(CodeSpec(length=32, prefix="A" * 16, postfix="B" * 16, check_character=True))
    assert set(errors) == {"length"}
    assert "65 characters" in errors["length"][0]


def test_every_problem_is_reported_at_once():
    spec = CodeSpec(pattern="a b", charset="aA", prefix="'; DROP TABLE coupons;--", postfix="x")
    assert set(errors_of(spec, 0)) == {"pattern", "charset", "prefix", "postfix", "count"}


@pytest.mark.parametrize("charset", ["0O123", "1ILX", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"])
def test_a_charset_with_characters_that_look_alike_is_refused(charset: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        CodeSpec(length=8, charset=charset).validate(1)
    assert any("look alike" in message for message in refused.value.errors["charset"])
