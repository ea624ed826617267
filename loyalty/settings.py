"""Configuration from environment variables: the one documented list (README, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "instance" / "loyalty.sqlite3"
DEFAULT_OUTBOX_FILE = PROJECT_ROOT / "instance" / "outbox-sent.jsonl"
DEV_SECRET_KEY = "dev-only-secret-change-me"  # noqa: S105 - refused outside development


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
    # Mail: without an SMTP server, messages are recorded to a file instead of sent.
    smtp_url: str | None = None
    mail_from: str = "loyalty@localhost"
    outbox_file: Path = DEFAULT_OUTBOX_FILE

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    secret_key = env.get("LOYALTY_SECRET_KEY", DEV_SECRET_KEY)
    mode = env.get("LOYALTY_ENV", "development")
    if mode == "production" and secret_key == DEV_SECRET_KEY:
        msg = "LOYALTY_SECRET_KEY must be set in production"
        raise RuntimeError(msg)
    return Settings(
        database_url=env.get("LOYALTY_DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}"),
        redis_url=env.get("LOYALTY_REDIS_URL") or None,
        secret_key=secret_key,
        # The card key signs QR payloads. It defaults to the secret key (cards.qr derives a key of
        # its own from it, so the two uses never share a key); set it apart so printed cards keep
        # working when the secret key is rotated.
        card_key=env.get("LOYALTY_CARD_KEY", secret_key),
        max_body_bytes=int(env.get("LOYALTY_MAX_BODY_BYTES", str(64 * 1024))),
        phone_region=env.get("LOYALTY_PHONE_REGION", "GB"),
        identify_failures_per_minute=int(env.get("LOYALTY_IDENTIFY_FAILURES_PER_MINUTE", "30")),
        env=mode,
        smtp_url=env.get("LOYALTY_SMTP_URL") or None,
        mail_from=env.get("LOYALTY_MAIL_FROM", "loyalty@localhost"),
        outbox_file=Path(env.get("LOYALTY_OUTBOX_FILE") or DEFAULT_OUTBOX_FILE),
    )
