"""What a view needs from the running app: the session, the clock, the settings."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from api.extensions import db
from loyalty.clock import Clock
from loyalty.members.services import LookupKeys
from loyalty.settings import Settings


def session() -> Session:
    return db.session()


def settings() -> Settings:
    value: Settings = current_app.extensions["loyalty.settings"]
    return value


def now() -> datetime:
    clock: Clock = current_app.extensions["loyalty.clock"]
    return clock.now()


def lookup_keys() -> LookupKeys:
    config = settings()
    return LookupKeys(card_key=config.card_key, phone_region=config.phone_region)
