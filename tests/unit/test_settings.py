"""Settings read from the environment: where the embedded data lives, and keys kept apart."""

from __future__ import annotations

from pathlib import Path

from loyalty.settings import load_settings


def test_the_embedded_database_and_outbox_live_under_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({"LOYALTY_INSTANCE_PATH": str(tmp_path / "shop")})
    assert settings.database_url == f"sqlite:///{tmp_path / 'shop' / 'loyalty.sqlite3'}"
    assert settings.outbox_file == tmp_path / "shop" / "outbox-sent.jsonl"


def test_without_its_own_setting_the_webhook_secret_is_derived_never_the_secret_key() -> None:
    settings = load_settings({"LOYALTY_SECRET_KEY": "s3cret"})
    other = load_settings({"LOYALTY_SECRET_KEY": "another"})
    assert settings.webhook_secret not in {"s3cret", settings.card_key}
    assert len(settings.webhook_secret) == 64
    assert settings.webhook_secret != other.webhook_secret
    given = load_settings({"LOYALTY_SECRET_KEY": "s3cret", "LOYALTY_WEBHOOK_SECRET": "shared"})
    assert given.webhook_secret == "shared"


def test_previous_card_keys_are_read_as_a_list() -> None:
    settings = load_settings({"LOYALTY_PREVIOUS_CARD_KEYS": " old-1, ,old-2 "})
    assert settings.lookup_keys.previous_card_keys == ("old-1", "old-2")
