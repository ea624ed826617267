"""The signed payload printed in a card's QR code, and its images.

`L1` + 16-digit number + 16 base32 characters of HMAC-SHA256 (80 bits): 34 characters, all in
QR's alphanumeric set, so the code fits version 2 (25x25 modules) at error correction M - small
enough for a key-tag - and a till can reject a made-up card without asking the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from collections.abc import Sequence

import qrcode
import qrcode.image.svg
from qrcode.image.pure import PyPNGImage

from loyalty.cards.numbers import CARD_NUMBER_LENGTH, is_ascii_digits

PAYLOAD_PREFIX = "L1"
_SIGNATURE_BYTES = 10
PAYLOAD_LENGTH = len(PAYLOAD_PREFIX) + CARD_NUMBER_LENGTH + 16


def _signing_key(card_key: str) -> bytes:
    # A key of its own, derived from the configured one, used for nothing but card payloads.
    return hmac.new(card_key.encode(), b"loyalty card QR payload v1", hashlib.sha256).digest()


def _signature(card_key: str, number: str) -> str:
    digest = hmac.new(_signing_key(card_key), number.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:_SIGNATURE_BYTES]).decode()


def sign_card(card_key: str, number: str) -> str:
    return f"{PAYLOAD_PREFIX}{number}{_signature(card_key, number)}"


def looks_like_payload(code: str) -> bool:
    return code.upper().startswith(PAYLOAD_PREFIX) and len(code) == PAYLOAD_LENGTH


def verify_payload(card_keys: Sequence[str], payload: str) -> str | None:
    """The card number, or None when the payload was forged or damaged. `card_keys`: the
    current key first, then keys it replaced (cards printed before a rotation still scan)."""
    payload = payload.upper()
    if not looks_like_payload(payload):
        return None
    number = payload[len(PAYLOAD_PREFIX) : len(PAYLOAD_PREFIX) + CARD_NUMBER_LENGTH]
    if not is_ascii_digits(number):
        return None
    signature = payload[-16:]
    if any(hmac.compare_digest(_signature(key, number), signature) for key in card_keys):
        return number
    return None


def _qr(payload: str) -> qrcode.QRCode:  # type: ignore[type-arg]
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(payload)
    code.make(fit=True)
    return code


def qr_svg(payload: str) -> bytes:
    image = _qr(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode").encode()


def qr_png(payload: str, box_size: int = 8) -> bytes:
    code = _qr(payload)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image(image_factory=PyPNGImage).save(buffer)
    return buffer.getvalue()
