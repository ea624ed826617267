"""Every operation of the OpenAPI document, fuzzed by schemathesis with data drawn from the
document itself (valid and invalid), with a terminal key or a staff key as the operation
states: no 5xx, and every answer conforms to the document (status, content type, headers,
body). A bounded number of examples per operation keeps it to seconds; the test prints what
it sent and what came back."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode
from sqlalchemy.orm import Session

from loyalty.clock import FixedClock
from loyalty.staff.services import Scope
from server.core.limits import FailureBudget
from server.core.shared import SharedState
from tests.factories import make_member, make_till, sell, staff_headers

EXAMPLES = 12  # per operation and generation mode

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def _callers(session: Session, clock: FixedClock, keys: Any) -> dict[str, dict[str, str]]:
    """A terminal key and a staff key with every scope, and something for them to find."""
    till = make_till(session, clock)
    member, _card = make_member(session, keys, clock)
    sell(session, till, keys, clock, member=member, external_id="S-1")
    return {
        "terminalKey": till.headers,
        "staffKey": staff_headers(session, clock, *(scope.value for scope in Scope)),
    }


def _exercise(strategy: Any, headers: dict[str, str], statuses: Counter[int]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        statuses[response.status_code] += 1

    exercise()


@pytest.mark.slow
def test_every_operation_answers_as_documented_and_never_with_a_5xx(
    app: Any, session: Session, clock: FixedClock, keys: Any
) -> None:
    callers = _callers(session, clock, keys)
    # fuzzing fails look-ups by the hundred: a budget that lets each reach the operation
    app.extensions["loyalty.failure_budget"] = FailureBudget(
        SharedState(None, timeout=1.0), 100_000
    )
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    statuses: Counter[int] = Counter()
    operations = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1
        requirements = operation.definition.raw.get("security") or [{"terminalKey": []}]
        for requirement in requirements:  # each key the operation takes: a till's, staff's
            headers = callers[next(iter(requirement))]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _exercise(operation.as_strategy(generation_mode=mode), headers, statuses)
    print(  # noqa: T201 - the figures of the run, for the note of whoever changed the API
        f"\nschemathesis: {operations} operations, {sum(statuses.values())} requests, "
        f"by status {dict(sorted(statuses.items()))}"
    )
    assert operations >= 30
    assert not [status for status in statuses if status >= 500]
