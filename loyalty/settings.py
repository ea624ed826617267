"""Configuration from environment variables: the one documented list (README, "Configuration")."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loyalty.deadlines import Deadlines

DEV_SECRET_KEY = "dev-only-secret-change-me"  # noqa: S105 - refused outside development


def instance_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded database and the recorded outbox live: LOYALTY_INSTANCE_PATH, or
    `instance/` under the working directory (never inside the installed package)."""
    env = os.environ if environ is None else environ
    return Path(env.get("LOYALTY_INSTANCE_PATH") or Path.cwd() / "instance").resolve()


@dataclass(frozen=True)
class LookupKeys:
    """What reading a scanned code needs: the key that signs QR cards (and the keys it
    replaced, still accepted on cards printed before a rotation), the phone region."""

    card_key: str
    phone_region: str
    previous_card_keys: tuple[str, ...] = ()
    # keys the digests of enrolled contacts (referral fraud checks); derived from the secret key
    contact_key: str = ""

    @property
    def contacts(self) -> str:
        """The key of contact digests (one derived from the card key when none was given)."""
        return self.contact_key or derived_key(self.card_key, "referral contacts")


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    card_key: str
    max_body_bytes: int
    phone_region: str
    identify_failures_per_minute: int
    env: str
    instance_path: Path
    # Mail: without an SMTP server, messages are recorded to a file instead of sent.
    smtp_url: str | None = None
    mail_from: str = "loyalty@localhost"
    outbox_file: Path = Path("instance/outbox-sent.jsonl")
    previous_card_keys: tuple[str, ...] = ()
    # signs the webhooks the outbox sends (X-Loyalty-Signature)
    webhook_secret: str = ""
    # /metrics is served only when this is on (or to a staff key with the `metrics` scope)
    public_metrics: bool = False
    log_format: str = "json"  # or "text", for a developer's terminal
    access_log: bool = False  # a log line per request (gunicorn's access log is cheaper)
    # seconds a call to Redis may take before the process does without it (server/core/shared.py)
    redis_timeout: float = 0.25
    # how long a request waits on PostgreSQL (loyalty.deadlines); the CLI and jobs wait longer
    deadlines: Deadlines = field(default_factory=Deadlines)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def lookup_keys(self) -> LookupKeys:
        return LookupKeys(
            self.card_key,
            self.phone_region,
            self.previous_card_keys,
            derived_key(self.secret_key, "referral contacts"),
        )


def derived_key(secret: str, purpose: str) -> str:
    """A key of its own for one purpose, derived from the secret key: whoever is given it (a
    webhook receiver) learns nothing of the secret, nor of any other key derived from it."""
    return hmac.new(secret.encode(), f"loyalty {purpose} v1".encode(), hashlib.sha256).hexdigest()


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    secret_key = env.get("LOYALTY_SECRET_KEY", DEV_SECRET_KEY)
    mode = env.get("LOYALTY_ENV", "development")
    if mode == "production" and secret_key == DEV_SECRET_KEY:
        msg = "LOYALTY_SECRET_KEY must be set in production"
        raise RuntimeError(msg)
    instance = instance_path(env)
    return Settings(
        database_url=env.get("LOYALTY_DATABASE_URL") or f"sqlite:///{instance / 'loyalty.sqlite3'}",
        redis_url=env.get("LOYALTY_REDIS_URL") or None,
        secret_key=secret_key,
        # The card key signs QR payloads. It defaults to the secret key (cards.qr derives a key of
        # its own from it, so the two uses never share a key); set it apart so printed cards keep
        # working when the secret key is rotated.
        card_key=env.get("LOYALTY_CARD_KEY", secret_key),
        previous_card_keys=tuple(
            key.strip()
            for key in env.get("LOYALTY_PREVIOUS_CARD_KEYS", "").split(",")
            if key.strip()
        ),
        max_body_bytes=int(env.get("LOYALTY_MAX_BODY_BYTES", str(64 * 1024))),
        phone_region=env.get("LOYALTY_PHONE_REGION", "GB"),
        identify_failures_per_minute=int(env.get("LOYALTY_IDENTIFY_FAILURES_PER_MINUTE", "30")),
        env=mode,
        instance_path=instance,
        smtp_url=env.get("LOYALTY_SMTP_URL") or None,
        mail_from=env.get("LOYALTY_MAIL_FROM", "loyalty@localhost"),
        outbox_file=Path(env.get("LOYALTY_OUTBOX_FILE") or instance / "outbox-sent.jsonl"),
        webhook_secret=env.get("LOYALTY_WEBHOOK_SECRET") or derived_key(secret_key, "webhooks"),
        public_metrics=_flag(env.get("LOYALTY_PUBLIC_METRICS")),
        log_format=env.get("LOYALTY_LOG_FORMAT", "json"),
        access_log=_flag(env.get("LOYALTY_ACCESS_LOG")),
        redis_timeout=float(env.get("LOYALTY_REDIS_TIMEOUT", "0.25")),
        deadlines=Deadlines(
            connect=int(env.get("LOYALTY_DB_CONNECT_TIMEOUT", "3")),
            statement=float(env.get("LOYALTY_DB_STATEMENT_TIMEOUT", "5")),
            lock=float(env.get("LOYALTY_DB_LOCK_TIMEOUT", "3")),
        ),
    )
