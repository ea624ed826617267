"""What a view needs from the running app: the session, the clock, the settings."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from loyalty.clock import Clock
from loyalty.settings import LookupKeys, Settings
from server.core.extensions import db


def session() -> Session:
    return db.session()


def settings() -> Settings:
    value: Settings = current_app.extensions["loyalty.settings"]
    return value


def now() -> datetime:
    clock: Clock = current_app.extensions["loyalty.clock"]
    return clock.now()


def lookup_keys() -> LookupKeys:
    return settings().lookup_keys
