"""Sending the code's email without waiting for the next run of `send-outbox`: once the request
has committed, the send-outbox job is submitted (loyalty.jobs.services.submit): on RQ when
Redis is configured, else in a thread of this process, so the page does not wait for SMTP. It
is submitted for every request, a member's address or not, so both take the same path.

The job sends whatever is due, through the configured backend (LOYALTY_SMTP_URL, or the
outbox file); the message stays in the outbox if this fails, for the next run to send."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask.sansio.app import App

from loyalty.jobs.services import submit
from loyalty.settings import Settings
from server.core.requests import after_commit

DELIVERY = "loyalty.member_sign_in_delivery"
Deliver = Callable[[Settings], object]


def send_outbox_now(settings: Settings) -> object:
    return submit("send-outbox", settings=settings, background=True)


def init_delivery(app: App) -> None:
    app.extensions.setdefault(DELIVERY, send_outbox_now)


def deliver_after_commit() -> None:
    deliver: Deliver = current_app.extensions[DELIVERY]
    settings: Settings = current_app.extensions["loyalty.settings"]

    def send() -> None:
        deliver(settings)

    after_commit(send)
