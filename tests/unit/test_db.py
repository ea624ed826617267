"""The embedded database's own requirement, said plainly instead of a syntax error later."""

from __future__ import annotations

import pytest

from loyalty.db import check_sqlite_version


def test_an_old_sqlite_is_refused_with_what_to_do_instead():
    with pytest.raises(RuntimeError, match=r"SQLite is 3\.31\.1; .* needs 3\.35 or later"):
        check_sqlite_version((3, 31, 1))
