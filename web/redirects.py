"""Where a page may send a browser next: only to a path of this site (no open redirects)."""

from __future__ import annotations

from urllib.parse import urlsplit

FALLBACK = "/till/"


def local_path(target: str | None, fallback: str = FALLBACK) -> str:
    """`target` when it is a path on this site (`/...`), else `fallback`: no scheme, no host,
    not `//host` or `///host` (which browsers read as another site), no backslash (`/\\host`
    is `//host` to a browser) and no control characters.

    The language switch uses it as it is; the till's `safe_next` (web/till/session.py) adds
    its own, stricter rule on top (paths under /till/ only)."""
    if not target or "\\" in target or not target.isprintable():
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target
