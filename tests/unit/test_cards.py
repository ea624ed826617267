"""Card numbers and QR payloads: no database needed."""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from loyalty.cards.numbers import (
    format_card_number,
    is_valid_card_number,
    luhn_check_digit,
    new_card_number,
)
from loyalty.cards.qr import PAYLOAD_LENGTH, qr_png, qr_svg, sign_card, verify_payload

KEY = "unit-test-card-key"


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4539578763621486", True),  # a published Luhn test number
        ("4539578763621487", False),  # last digit changed
        ("4539578763621468", False),  # two digits swapped
        ("453957876362148", False),  # 15 digits
        ("45395787636214861", False),  # 17 digits
        ("45395787636214a6", False),
    ],
)
def test_a_card_number_is_valid_only_with_sixteen_digits_and_the_right_check_digit(
    number: str, valid: bool
):
    assert is_valid_card_number(number) is valid


def test_a_single_mistyped_digit_is_always_caught():
    number = new_card_number()
    for position in range(16):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            typo = number[:position] + digit + number[position + 1 :]
            assert not is_valid_card_number(typo), typo


def test_new_card_numbers_are_valid_random_and_outside_payment_card_ranges():
    numbers = {new_card_number() for _ in range(500)}
    assert len(numbers) == 500
    assert all(is_valid_card_number(n) and n.startswith("9") for n in numbers)


def test_check_digit_matches_the_standard_example():
    assert luhn_check_digit("7992739871") == "3"


def test_a_card_number_prints_in_groups_of_four():
    assert format_card_number("9123456789012345") == "9123 4567 8901 2345"


def test_a_signed_payload_verifies_and_gives_the_card_number():
    payload = sign_card(KEY, "9123456789012345")
    assert len(payload) == PAYLOAD_LENGTH == 34
    assert re.fullmatch(r"[0-9A-Z]+", payload), "alphanumeric QR mode keeps the code small"
    assert verify_payload((KEY,), payload) == "9123456789012345"
    assert verify_payload((KEY,), payload.lower()) == "9123456789012345"  # scanners may lowercase


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p[:5] + ("1" if p[5] != "1" else "2") + p[6:],  # another card number
        lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),  # damaged signature
        lambda p: p[:-1],  # truncated
        lambda p: "X" + p[1:],  # unknown prefix
    ],
)
def test_a_forged_or_damaged_payload_does_not_verify(tamper):
    payload = sign_card(KEY, "9123456789012345")
    assert verify_payload((KEY,), tamper(payload)) is None


def test_a_payload_signed_with_another_key_does_not_verify():
    assert verify_payload((KEY,), sign_card("another key", "9123456789012345")) is None


def test_cards_printed_before_a_key_rotation_still_verify_with_the_previous_key_listed():
    printed_before = sign_card("the old key", "9123456789012345")
    assert verify_payload(("the new key",), printed_before) is None
    assert verify_payload(("the new key", "the old key"), printed_before) == "9123456789012345"


def _decode(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    return results[0].text


def test_the_png_qr_code_decodes_back_to_the_payload():
    payload = sign_card(KEY, new_card_number())
    image = Image.open(io.BytesIO(qr_png(payload)))
    assert _decode(image.convert("L")) == payload


def _rasterise_svg(svg: bytes, scale: int = 8) -> Image.Image:
    """Draw the SVG's module squares (qrcode's path image: "Mx,yHx2Vy2Hxz" per module)."""
    text = svg.decode()
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', text).group(1))
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    path = re.search(r' d="([^"]+)"', text).group(1)
    squares = re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)", path)
    assert squares, "the SVG draws modules as path squares"
    for x, y, x2, y2 in squares:
        draw.rectangle(
            [float(x) * scale, float(y) * scale, float(x2) * scale - 1, float(y2) * scale - 1],
            fill=0,
        )
    return image


def test_the_svg_qr_code_decodes_back_to_the_payload_and_is_small():
    payload = sign_card(KEY, new_card_number())
    svg = qr_svg(payload)
    assert b'viewBox="0 0 33 33"' in svg, "version 2 (25 modules) plus the quiet zone"
    assert _decode(_rasterise_svg(svg)) == payload
