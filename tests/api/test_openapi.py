"""The OpenAPI document as an integrator reads it: every operation says who may call it (and
with which staff scope), which errors it answers, and has an id; errors are documented as the
problem+json actually sent; every schema in it is used."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from loyalty.staff.services import Scope

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/openapi.json").get_json()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_has_a_unique_id_and_states_its_security(spec):
    operations = _operations(spec)
    ids = Counter(operation["operationId"] for _path, _method, operation in operations)
    assert len(operations) >= 30
    assert [name for name, count in ids.items() if count > 1] == []
    for path, method, operation in operations:
        schemes = {scheme for requirement in operation["security"] for scheme in requirement}
        assert schemes <= {"terminalKey", "staffKey"}, (method, path)
        assert schemes, (method, path)
        responses = operation["responses"]
        assert "401" in responses, (method, path)
        if "staffKey" in schemes and operation.get("x-staff-scope"):
            assert operation["x-staff-scope"] in {scope.value for scope in Scope}
            assert "403" in responses, (method, path)


LOOKUPS = {
    ("post", "/api/v1/pos/identify"),
    ("get", "/api/v1/members/{member_id}"),
    ("patch", "/api/v1/members/{member_id}"),
    ("get", "/api/v1/cards/{number}"),
    ("post", "/api/v1/cards/{number}/block"),
}


def test_every_operation_documents_the_errors_its_input_can_bring(spec):
    for path, method, operation in _operations(spec):
        responses = set(operation["responses"])
        body = "requestBody" in operation
        query = any(p["in"] == "query" for p in operation.get("parameters", []))
        if body or query:
            assert "422" in responses, (method, path)
        if body:
            assert {"400", "413"} <= responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
    for method, path in LOOKUPS:
        assert "429" in spec["paths"][path][method]["responses"], (method, path)


def test_staff_operations_name_their_scope(spec):
    staff_only = [
        (path, method, operation)
        for path, method, operation in _operations(spec)
        if [list(r) for r in operation["security"]] == [["staffKey"]]
    ]
    assert staff_only
    for path, method, operation in staff_only:
        assert operation.get("x-staff-scope"), (method, path)
    assert spec["paths"]["/api/v1/members/{member_id}/export"]["get"]["x-staff-scope"] == "members"


def test_errors_are_documented_as_the_problem_json_that_is_sent(spec, client, till_headers):
    responses = spec["components"]["responses"]
    for name, response in responses.items():
        if "content" in response:
            assert list(response["content"]) == ["application/problem+json"], name
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, name
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["properties"]["status"]["type"] == "integer"
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "errors",
        "request_id",
    }
    sent = client.post("/api/v1/pos/identify", headers=till_headers, json={"code": "x@y.io"})
    assert sent.status_code == 404
    assert sent.mimetype == "application/problem+json"
    assert set(sent.get_json()) <= set(problem["properties"])
    assert "about:blank" not in json.dumps(spec)


def test_a_breakage_ratio_is_documented_as_the_string_it_is_sent_as(spec):
    ratio = spec["components"]["schemas"]["Breakage"]["properties"]["ratio"]
    assert (ratio["type"], ratio.get("format")) == ("string", "decimal")


def test_every_schema_in_the_document_is_used(spec):
    text = json.dumps({key: value for key, value in spec.items() if key != "components"})
    components = json.dumps(
        {key: value for key, value in spec["components"].items() if key != "schemas"}
    )
    nested = json.dumps(spec["components"]["schemas"])
    unused = [
        name
        for name in spec["components"]["schemas"]
        if f'"#/components/schemas/{name}"' not in text + components + nested
    ]
    assert unused == []


@pytest.fixture
def till_headers(session: Any, clock: Any) -> dict[str, str]:
    from tests.factories import make_till  # noqa: PLC0415

    return make_till(session, clock).headers
