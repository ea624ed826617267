"""Coupon codes: how they are made (`CodeSpec`), checked (a Luhn mod N check character) and
reduced to the key they are stored and looked up by (`normalise_code`).

The default alphabet is Crockford's base32, `0-9` and `A-Z` without I, L, O and U: of each
look-alike pair (O/0, I/1, L/1, U/V) at most one character is in it, so a code never holds
two characters a person could mistake for each other. A typed look-alike that is not in the
alphabet is read as the one that is (`LOOK_ALIKES`), and case, spaces, dashes and underscores
never matter.

Pure functions over plain data: no database, no web framework.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple

from loyalty.errors import InvalidInput

DEFAULT_CHARSET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# typed -> meant; applied only when the typed character is outside the alphabet and the meant
# one is in it
LOOK_ALIKES: Final = MappingProxyType({"O": "0", "I": "1", "L": "1", "U": "V"})

MIN_LENGTH: Final = 4
MAX_LENGTH: Final = 32
MAX_PATTERN_LENGTH: Final = 64
MAX_AFFIX_LENGTH: Final = 16  # prefix, postfix
MAX_CODE_LENGTH: Final = 64  # a whole code, check character included: the key's column size
MAX_COUNT: Final = 10_000_000
CAPACITY_FACTOR: Final = 10  # a spec gives at least 10x the codes asked: draws rarely collide
MIN_CHARSET: Final = 2
PLACEHOLDER: Final = "#"

# Whitespace (NBSP, tabs, new lines...), ASCII and Unicode dashes (U+2010-U+2015, minus
# U+2212), underscores, and the invisible soft hyphen and zero-width characters of pasted text.
_SEPARATORS = re.compile("[\\s\\-_\u2010-\u2015\u2212\u00ad\u200b-\u200d\u2060\ufeff]+")
_ALLOWED_IN_CHARSET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_AFFIX = re.compile(r"[A-Z0-9-]*")
_BYTE_VALUES = 256


@lru_cache(maxsize=64)
def _look_alike_table(alphabet: str) -> dict[int, str]:
    return {
        ord(typed): meant
        for typed, meant in LOOK_ALIKES.items()
        if typed not in alphabet and meant in alphabet
    }


def normalise_code(text: str, charset: str | None = DEFAULT_CHARSET) -> str:
    """`text` in capitals without separators, look-alikes outside `charset` read as the
    character in it. With `charset` None, no look-alike is mapped (shared codes: "SUMMER10")."""
    text = _SEPARATORS.sub("", text.casefold().upper())
    if charset is None:
        return text
    return text.translate(_look_alike_table(charset.upper()))


def lookup_forms(text: str, charset: str = DEFAULT_CHARSET) -> tuple[str, ...]:
    """The keys to look a typed code up by: without look-alike mapping first (shared codes),
    then with it when that differs. Empty when nothing but separators was typed."""
    plain = normalise_code(text, None)
    mapped = normalise_code(text, charset)
    if not plain:
        return ()
    return (plain,) if mapped == plain else (plain, mapped)


def display_to_key(code: str, charset: str | None) -> str:
    """The key a code is stored under: `normalise_code(code, charset)`."""
    return normalise_code(code, charset)


def _luhn_addend(factor: int, value: int, base: int) -> int:
    product = factor * value
    return product // base + product % base


def _check_value(values: list[int], base: int) -> int:
    """Luhn mod N: from the right, every other value doubled (its base-N digits summed)."""
    total = sum(
        _luhn_addend(2 if position % 2 == 0 else 1, value, base)
        for position, value in enumerate(reversed(values))
    )
    return -total % base


def check_character(body: str, charset: str) -> str:
    """The Luhn mod N check character of `body` (https://en.wikipedia.org/wiki/Luhn_mod_N_algorithm),
    over its characters that are in `charset` once normalised; the others (dashes...) are
    skipped. Catches every single wrong character when `charset` has an even size, and every
    swap of two adjacent characters but one: the first and last characters of `charset` ("0Z"
    for "Z0" in the default alphabet), as plain Luhn misses "09" for "90"."""
    alphabet = charset.upper()
    index = {char: value for value, char in enumerate(alphabet)}
    key = normalise_code(body, alphabet)
    return alphabet[_check_value([index[c] for c in key if c in index], len(alphabet))]


def has_valid_check(code: str, charset: str) -> bool:
    """Whether the normalised `code` ends with the check character of the rest of it."""
    alphabet = charset.upper()
    key = normalise_code(code, alphabet)
    if not key or key[-1] not in alphabet:
        return False
    index = {char: value for value, char in enumerate(alphabet)}
    values = [index[c] for c in key[:-1] if c in index]
    return alphabet[_check_value(values, len(alphabet))] == key[-1]


class _Plan(NamedTuple):
    """What `CodeSpec.generate` needs, worked out once per spec."""

    alphabet: str
    positions: int  # random characters in a code
    template: str | None  # str.format template with {} per random character; None: none needed
    byte_map: bytes  # random byte -> character of the alphabet (bytes.translate table)
    rejected: bytes  # random bytes dropped so that every character is equally likely
    check_base: int | None  # the literals' Luhn sum; None: no check character
    check_tables: tuple[dict[str, int], ...]  # per random position: character -> Luhn addend


@dataclass(frozen=True)
class CodeSpec:
    """How the unique codes of a batch look: a `pattern` ("SUM-####-####": each # a random
    character of `charset`, any other character kept) or `length` random characters, between
    `prefix` and `postfix`, then an optional check character. Call `validate` before use."""

    pattern: str | None = None
    length: int | None = None
    charset: str = DEFAULT_CHARSET
    prefix: str = ""
    postfix: str = ""
    check_character: bool = False

    @property
    def random_positions(self) -> int:
        if self.pattern is not None:
            return self.pattern.count(PLACEHOLDER)
        return self.length or 0

    def capacity(self) -> int:
        """How many different codes the spec can give."""
        return int(len(self.charset) ** self.random_positions)

    def validate(self, count: int = 1) -> None:
        """Raise InvalidInput naming every field at fault when the spec cannot make `count`
        distinct codes comfortably (capacity at least CAPACITY_FACTOR x count)."""
        errors = self._shape_errors()
        if problems := _charset_problems(self.charset, check=self.check_character):
            errors["charset"] = problems
        for name, affix in (("prefix", self.prefix), ("postfix", self.postfix)):
            if problems := _affix_problems(affix):
                errors[name] = problems
        if count < 1:
            errors["count"] = ["must be at least 1"]
        elif count > MAX_COUNT:
            errors["count"] = [f"must be at most {MAX_COUNT:,}"]
        if not errors:
            errors = self._size_errors(count)
        if errors:
            raise InvalidInput("the code spec has invalid fields: see errors", errors=errors)

    def _shape_errors(self) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if self.pattern is not None and self.length is not None:
            errors["pattern"] = ["give a pattern or a length, not both"]
        elif self.pattern is None and self.length is None:
            errors["pattern"] = ["give a pattern or a length"]
        if self.pattern is not None and (problems := _pattern_problems(self.pattern)):
            errors.setdefault("pattern", []).extend(problems)
        if self.length is not None and not MIN_LENGTH <= self.length <= MAX_LENGTH:
            errors["length"] = [f"must be between {MIN_LENGTH} and {MAX_LENGTH}"]
        return errors

    def _size_errors(self, count: int) -> dict[str, list[str]]:
        """A code too long for its column, or too few codes for `count`."""
        shape = "pattern" if self.pattern is not None else "length"
        total = len(self.prefix) + len(self.postfix) + int(self.check_character)
        total += len(self.pattern) if self.pattern is not None else self.random_positions
        if total > MAX_CODE_LENGTH:
            message = (
                f"a code would be {total} characters long (prefix, postfix and check "
                f"character included); at most {MAX_CODE_LENGTH}"
            )
            return {shape: [message]}
        capacity, need = self.capacity(), CAPACITY_FACTOR * count
        if capacity >= need:
            return {}
        positions = self.random_positions
        while len(self.charset) ** positions < need:
            positions += 1
        if self.pattern is not None:
            what, fix = "the pattern", f"{positions} # placeholders"
        else:
            what, fix = f"a length of {self.length}", f"a length of {positions}"
        message = (
            f"{what} gives {capacity:,} codes; {count:,} codes need at least {need:,}, "
            f"so at least {fix}"
        )
        return {"count": [message]}

    def generate(self, rng: random.Random) -> str:
        """One code, as printed. `rng` is a `secrets.SystemRandom` (a `random.Random` too) or
        a `random.Random` seeded from it."""
        return self.batch(1, rng)[0]

    def batch(self, n: int, rng: random.Random) -> list[str]:
        """`n` codes, as printed; they may repeat (the caller keeps those not taken yet)."""
        plan = self._plan
        size = plan.positions
        if size == 0:  # a spec validate() refuses; no random character to draw
            chunks = [""] * n
        else:
            text = _random_text(rng, n * size, plan)
            chunks = [text[start : start + size] for start in range(0, n * size, size)]
        if plan.check_base is not None:
            base, tables, alphabet = plan.check_base, plan.check_tables, plan.alphabet
            modulus = len(alphabet)
            chunks = [
                chunk
                + alphabet[
                    -(base + sum(t[c] for t, c in zip(tables, chunk, strict=True))) % modulus
                ]
                for chunk in chunks
            ]
        template = plan.template
        if template is None:
            return chunks
        return [template.format(*chunk) for chunk in chunks]

    @cached_property
    def _plan(self) -> _Plan:
        alphabet = self.charset.upper()
        modulus = max(len(alphabet), 1)
        # (None: a random character, else a literal one) in the order a code shows them
        pattern = self.pattern if self.pattern is not None else PLACEHOLDER * (self.length or 0)
        slots: list[str | None] = [
            *self.prefix,
            *(None if char == PLACEHOLDER else char for char in pattern),
            *self.postfix,
        ]
        template = "".join("{}" if slot is None else _escape(slot) for slot in slots)
        if self.check_character:
            template += "{}"
        plain = all(slot is None for slot in slots)
        usable = _BYTE_VALUES - _BYTE_VALUES % modulus
        check_base: int | None = None
        tables: tuple[dict[str, int], ...] = ()
        if self.check_character and alphabet:
            check_base, tables = _check_plan(slots, alphabet)
        return _Plan(
            alphabet=alphabet,
            positions=self.random_positions,
            template=None if plain else template,
            byte_map=bytes(ord(alphabet[b % modulus]) if alphabet else 0 for b in range(256)),
            rejected=bytes(range(usable, _BYTE_VALUES)),
            check_base=check_base,
            check_tables=tables,
        )


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def _check_plan(slots: list[str | None], alphabet: str) -> tuple[int, tuple[dict[str, int], ...]]:
    """The Luhn sum of a spec's literals, and each random position's addend per character: a
    code's check character is then a few look-ups (same result as `check_character`)."""
    index = {char: value for value, char in enumerate(alphabet)}
    modulus = len(alphabet)
    # what the check covers, in order: a random position (None) or a literal's value
    covered: list[int | None] = []
    for slot in slots:
        if slot is None:
            covered.append(None)
        else:
            covered.extend(index[c] for c in normalise_code(slot, alphabet) if c in index)
    base = 0
    tables: list[dict[str, int]] = []
    for position, value in enumerate(reversed(covered)):
        factor = 2 if position % 2 == 0 else 1
        if value is None:
            tables.append({c: _luhn_addend(factor, v, modulus) for c, v in index.items()})
        else:
            base += _luhn_addend(factor, value, modulus)
    return base, tuple(reversed(tables))


def _random_text(rng: random.Random, size: int, plan: _Plan) -> str:
    """`size` characters of the alphabet, each equally likely: random bytes mapped by
    bytes.translate, those above the last whole multiple of the alphabet's size dropped."""
    text = rng.randbytes(size).translate(plan.byte_map, plan.rejected)
    while len(text) < size:  # only for alphabets whose size does not divide 256
        text += rng.randbytes(size - len(text)).translate(plan.byte_map, plan.rejected)
    return text.decode("ascii")


def _pattern_problems(pattern: str) -> list[str]:
    problems = []
    if PLACEHOLDER not in pattern:
        problems.append("needs at least one # (a random character)")
    if len(pattern) > MAX_PATTERN_LENGTH:
        problems.append(f"must be at most {MAX_PATTERN_LENGTH} characters")
    if any(char.isspace() for char in pattern):
        problems.append("must not contain spaces or other whitespace")
    if any(not char.isspace() and not "!" <= char <= "~" for char in pattern):
        problems.append("only printable ASCII characters are allowed")
    return problems


def _charset_problems(charset: str, *, check: bool) -> list[str]:
    alphabet = charset.upper()
    problems = []
    if len(alphabet) < MIN_CHARSET:
        problems.append(f"needs at least {MIN_CHARSET} characters")
    if not set(alphabet) <= _ALLOWED_IN_CHARSET:
        problems.append("only letters A-Z and digits 0-9 are allowed")
    if repeated := sorted({char for char in alphabet if alphabet.count(char) > 1}):
        verb = "appears" if len(repeated) == 1 else "appear"
        problems.append(
            f"{', '.join(repeated)} {verb} more than once (a letter counts once in either case)"
        )
    if check and len(alphabet) % 2:
        problems.append("a check character needs an even number of characters (Luhn mod N)")
    alike = sorted(f"{a}/{b}" for a, b in LOOK_ALIKES.items() if a in alphabet and b in alphabet)
    if alike:
        problems.append(
            f"{', '.join(alike)} look alike: a cashier could not tell them apart; keep one of each"
        )
    return problems


def _affix_problems(affix: str) -> list[str]:
    problems = []
    if len(affix) > MAX_AFFIX_LENGTH:
        problems.append(f"must be at most {MAX_AFFIX_LENGTH} characters")
    if not _AFFIX.fullmatch(affix):
        problems.append("only capital letters A-Z, digits 0-9 and - are allowed")
    return problems
