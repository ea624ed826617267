"""A real SMTP server (aiosmtpd) for the tests that send email, and waiting for a message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Inbox:
    """What the SMTP server received."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted for delivery"

    def received(self, recipient: str, seconds: float = 15) -> Message:
        """The first message to `recipient`, waiting up to `seconds` for it to arrive."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _sender, recipients, message in self.messages:
                if recipient in recipients:
                    return message
            time.sleep(0.05)
        pytest.fail(f"no email reached {recipient} within {seconds} seconds")


@contextmanager
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """An SMTP server on a free loopback port: its URL (for LOYALTY_SMTP_URL) and its inbox."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()
