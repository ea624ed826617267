"""Earning rules over HTTP, as the marketer's console uses them (staff keys, `rules` scope)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit.models import AuditEntry
from loyalty.clock import FixedClock
from loyalty.rules.schemas import PARAMS, RuleDefinition
from loyalty.settings import LookupKeys
from loyalty.tiers.services import create_tier
from tests.factories import make_member, make_till, qr_of, sale_body, staff_headers

RULES = "/api/v1/rules"
TRIPLE = {"name": "Triple points", "kind": "spend", "params": {"points": 3, "per_minor": 100}}


@pytest.fixture
def staff(session: Session, clock: FixedClock) -> dict[str, str]:
    return staff_headers(session, clock, "rules")


def _create(client: FlaskClient, staff: dict[str, str], **definition: Any) -> dict[str, Any]:
    response = client.post(RULES, headers=staff, json=definition)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _audit(session: Session, action: str, rule_id: int) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.subject_id == str(rule_id))
            .order_by(AuditEntry.id)
        )
    )


def test_staff_create_read_and_list_rules_in_evaluation_order(client, session, staff):
    late = _create(
        client, staff, name="Visit bonus", kind="visit", params={"points": 5}, priority=50
    )
    first = _create(client, staff, **TRIPLE, priority=10)
    tie = _create(
        client,
        staff,
        name="Dairy x2",
        kind="product",
        priority=50,
        params={"categories": ["dairy"], "mode": "multiply", "multiplier_percent": 200},
    )

    listed = client.get(RULES, headers=staff)
    read = client.get(f"{RULES}/{first['id']}", headers=staff)

    assert listed.status_code == 200
    assert [rule["id"] for rule in listed.get_json()] == [first["id"], late["id"], tie["id"]]
    assert read.status_code == 200
    assert read.get_json() == first
    assert first["params"] == {"points": 3, "per_minor": 100, "rounding": "down"}  # defaults
    assert (first["stackable"], first["archived_at"], first["cap_points"]) == (True, None, None)
    (entry,) = _audit(session, "rule.create", first["id"])
    assert entry.actor.startswith("staff:")
    assert entry.details["after"]["name"] == "Triple points"


def test_a_change_is_validated_as_a_whole_rule_and_audited_with_before_and_after(
    client, session, staff
):
    rule = _create(client, staff, **TRIPLE, starts_at="2026-03-01T00:00:00+00:00")

    ends_first = client.patch(
        f"{RULES}/{rule['id']}", headers=staff, json={"ends_at": "2026-02-01T00:00:00+00:00"}
    )
    other_kind = client.patch(f"{RULES}/{rule['id']}", headers=staff, json={"kind": "visit"})
    changed = client.patch(
        f"{RULES}/{rule['id']}",
        headers=staff,
        json={"priority": 5, "params": {"points": 4, "per_minor": 100}},
    )

    assert ends_first.status_code == 422
    assert ends_first.get_json()["errors"] == {"ends_at": ["the rule ends before it starts"]}
    assert other_kind.status_code == 422  # a visit's params have no per_minor or rounding
    assert set(other_kind.get_json()["errors"]) == {"params.per_minor", "params.rounding"}
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["priority"], changed.get_json()["params"]["points"]) == (5, 4)
    assert client.get(f"{RULES}/{rule['id']}", headers=staff).get_json()["kind"] == "spend"
    (entry,) = _audit(session, "rule.update", rule["id"])
    assert entry.actor.startswith("staff:")
    assert (entry.details["before"]["priority"], entry.details["after"]["priority"]) == (100, 5)


def test_an_archived_rule_stops_at_the_next_sale_and_the_sale_before_keeps_its_points(
    client, session, staff, keys: LookupKeys, clock
):
    till = make_till(session, clock)
    _member, card = make_member(session, keys, clock)
    code = qr_of(card, keys)
    rule = _create(client, staff, **TRIPLE)

    before = client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body("r-1", code, clock.now())
    )
    archived = client.delete(f"{RULES}/{rule['id']}", headers=staff)
    after = client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body("r-2", code, clock.now())
    )
    replay = client.post(
        "/api/v1/pos/transactions", headers=till.headers, json=sale_body("r-1", code, clock.now())
    )

    assert before.status_code == 201
    assert before.get_json()["points"]["earned"] == 53  # 17.78 at 3 per 1.00
    assert before.get_json()["points"]["reasons"][0]["rule"] == "Triple points"
    assert archived.status_code == 200
    assert archived.get_json()["archived_at"] == clock.now().isoformat()
    assert after.get_json()["points"]["earned"] == 17  # the program's own 1 per 1.00
    assert after.get_json()["points"]["reasons"][0]["rule"] == "base"
    assert (replay.status_code, replay.get_json()["points"]["earned"]) == (200, 53)
    assert after.get_json()["balance"]["available"] == 53 + 17
    assert client.get(RULES, headers=staff).get_json() == []
    listed_all = client.get(RULES, headers=staff, query_string={"include_archived": "true"})
    assert [r["id"] for r in listed_all.get_json()] == [rule["id"]]
    (entry,) = _audit(session, "rule.archive", rule["id"])
    assert entry.actor.startswith("staff:")
    changed = client.patch(f"{RULES}/{rule['id']}", headers=staff, json={"priority": 1})
    assert changed.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", RULES),
        ("post", RULES),
        ("get", f"{RULES}/1"),
        ("patch", f"{RULES}/1"),
        ("delete", f"{RULES}/1"),
    ],
)
def test_rules_need_a_staff_key_with_the_rules_scope(client, session, clock, method, path):
    without_scope = staff_headers(session, clock, "tiers", "reports")
    till = make_till(session, clock)

    forbidden = getattr(client, method)(path, headers=without_scope, json=TRIPLE)
    terminal = getattr(client, method)(path, headers=till.headers, json=TRIPLE)
    anonymous = getattr(client, method)(path, json=TRIPLE)

    assert forbidden.status_code == 403
    assert "rules scope" in forbidden.get_json()["detail"]
    assert terminal.status_code == 401
    assert anonymous.status_code == 401
    assert client.get(RULES, headers=staff_headers(session, clock, "rules")).get_json() == []


def test_an_unknown_rule_is_404(client, staff):
    for response in (
        client.get(f"{RULES}/999999", headers=staff),
        client.patch(f"{RULES}/999999", headers=staff, json={"priority": 1}),
        client.delete(f"{RULES}/999999", headers=staff),
    ):
        assert response.status_code == 404
        assert response.get_json()["errors"] == {"rule_id": ["no rule has id 999999"]}


PROMOTION = {"name": "Happy hour", "kind": "promotion", "params": {"mode": "add", "points": 5}}


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (TRIPLE | {"params": {"points": -1, "per_minor": 100}}, "params.points"),
        (TRIPLE | {"params": {"points": 0, "per_minor": 100}}, "params.points"),
        (TRIPLE | {"params": {"points": 1, "per_minor": 0}}, "params.per_minor"),
        (TRIPLE | {"params": {"points": 1}}, "params.per_minor"),
        (
            TRIPLE | {"params": {"points": 1, "per_minor": 100, "rounding": "sideways"}},
            "params.rounding",
        ),
        (
            TRIPLE
            | {"starts_at": "2026-04-01T00:00:00+00:00", "ends_at": "2026-03-01T00:00:00+00:00"},
            "ends_at",
        ),
        (TRIPLE | {"starts_at": "2026-04-01T00:00:00"}, "starts_at"),  # no zone: ambiguous
        (
            {
                "name": "Milk",
                "kind": "product",
                "params": {"sku": ["MILK"], "mode": "add", "points_per_unit": 2},
            },
            "params.sku",
        ),
        (
            {"name": "Milk", "kind": "product", "params": {"mode": "add", "points_per_unit": 2}},
            "params.skus",
        ),
        (
            {"name": "Milk", "kind": "product", "params": {"skus": ["MILK"], "mode": "multiply"}},
            "params.multiplier_percent",
        ),
        (TRIPLE | {"kind": "raffle"}, "kind"),
        ({"kind": "visit", "params": {"points": 5}}, "name"),
        (TRIPLE | {"tiers": ["PLATINUM"]}, "tiers"),
        (TRIPLE | {"stores": ["NO-SUCH-STORE"]}, "stores"),
        (
            {"name": "Tiers", "kind": "tier_multiplier", "params": {"percents": {"PLATINUM": 150}}},
            "params.percents",
        ),
        (TRIPLE | {"cap_points": 100}, "cap_period"),
        (TRIPLE | {"cap_period": "month"}, "cap_period"),
        (TRIPLE | {"cap_points": 100, "cap_period": "fortnight"}, "cap_period"),
        (
            PROMOTION
            | {"params": {"mode": "add", "points": 5, "from_time": "18:00", "until_time": "09:00"}},
            "params.until_time",
        ),
        (
            PROMOTION | {"params": {"mode": "add", "points": 5, "from_time": "25:00"}},
            "params.from_time",
        ),
        (
            PROMOTION | {"params": {"mode": "add", "points": 5, "weekdays": [5, 7]}},
            "params.weekdays.1",
        ),
        (
            PROMOTION | {"params": {"mode": "add", "points": 5, "weekdays": [-1]}},
            "params.weekdays.0",
        ),
        (
            PROMOTION | {"params": {"mode": "multiply", "multiplier_percent": 100}},
            "params.multiplier_percent",
        ),
        (TRIPLE | {"priority": "first"}, "priority"),
        (TRIPLE | {"id": 7}, "id"),
        ([TRIPLE], "_body"),
        ("Triple points", "_body"),
        (None, "_body"),
    ],
)
def test_a_bad_definition_is_422_with_the_field_named_and_nothing_created(
    client, session, clock, staff, definition, field
):
    create_tier(
        session, code="GOLD", name="Gold", rank=1, threshold=1000, actor="test", now=clock.now()
    )
    make_till(session, clock, store_code="LDN-01")
    response = client.post(RULES, headers=staff, json=definition)

    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert (body["status"], body["title"]) == (422, "Invalid rule")
    assert field in body["errors"], body["errors"]
    assert all(isinstance(m, str) and m for m in body["errors"][field])
    assert client.get(RULES, headers=staff).get_json() == []


def test_a_body_that_is_not_json_is_422_saying_to_send_json(client, staff):
    response = client.post(RULES, headers=staff, data="name=x", content_type="text/plain")
    change = client.patch(f"{RULES}/1", headers=staff, json=[{"priority": 1}])

    assert response.status_code == 422
    assert "Content-Type: application/json" in response.get_json()["errors"]["_body"][0]
    assert change.status_code == 422
    assert change.get_json()["errors"] == {
        "_body": ["the body must be a JSON object: the rule's fields"]
    }


def test_known_tier_and_store_codes_are_accepted(client, session, clock, staff):
    create_tier(
        session, code="GOLD", name="Gold", rank=1, threshold=1000, actor="test", now=clock.now()
    )
    make_till(session, clock, store_code="LDN-01")

    rule = _create(
        client,
        staff,
        **TRIPLE,
        tiers=["GOLD"],
        stores=["LDN-01"],
        cap_points=500,
        cap_period="month",
    )

    assert (rule["tiers"], rule["stores"]) == (["GOLD"], ["LDN-01"])
    assert (rule["cap_points"], rule["cap_period"]) == (500, "month")


def test_the_openapi_document_describes_the_rule_paths_and_body(client):
    spec = client.get("/api/openapi.json").get_json()

    assert {"get", "post"} <= set(spec["paths"]["/api/v1/rules"])
    assert {"get", "patch", "delete"} <= set(spec["paths"]["/api/v1/rules/{rule_id}"])
    body = spec["paths"]["/api/v1/rules"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RuleIn"}
    definition = spec["components"]["schemas"]["RuleIn"]
    # the document shows exactly the fields the domain's validation takes
    assert set(definition["properties"]) == set(RuleDefinition().fields)
    params = spec["components"]["schemas"]["RuleParams"]["properties"]
    assert set(params) == {name for schema in PARAMS.values() for name in schema().fields}
    assert set(definition["required"]) == {"name", "kind"}
    assert "tier_multiplier" in definition["properties"]["kind"]["enum"]
    assert {
        "params",
        "priority",
        "stackable",
        "starts_at",
        "ends_at",
        "tiers",
        "stores",
        "cap_points",
        "cap_period",
    } <= set(definition["properties"])
