"""Earning rules as data: created, changed and archived by staff (audited), read by every sale."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from loyalty.audit.services import record
from loyalty.db import MAX_ID, UtcDateTime
from loyalty.errors import InvalidInput, NotFound, flatten_messages
from loyalty.program import get_program, new_config_version
from loyalty.rules.engine import Award, CapPeriod, Rule, RuleKind, period_start
from loyalty.rules.models import EarnAward, EarnRule
from loyalty.rules.schemas import RuleDefinition
from loyalty.stores.models import Store
from loyalty.tiers.models import Tier
from loyalty.versioned import VersionedCache

DEFINITION_FIELDS = tuple(RuleDefinition().fields)


class InvalidRule(InvalidInput):
    title = "Invalid rule"


def validate_definition(session: Session, definition: dict[str, Any]) -> dict[str, Any]:
    """A clean definition, or InvalidRule with a message per field."""
    try:
        clean: dict[str, Any] = RuleDefinition().load(definition)
    except ValidationError as exc:
        errors = flatten_messages(exc.messages, whole="_rule")
        raise InvalidRule("the rule has invalid fields: see errors", errors=errors) from exc
    errors = {}
    for field, model, column in (("tiers", Tier, Tier.code), ("stores", Store, Store.code)):
        wanted = set(clean.get(field) or ())
        if wanted:
            known = set(session.scalars(select(column).where(column.in_(wanted))))
            if wanted - known:
                errors[field] = [
                    f"unknown {model.__tablename__}: {', '.join(sorted(wanted - known))}"
                ]
    tier_codes = set(clean["params"].get("percents", {}))
    if tier_codes:
        known = set(session.scalars(select(Tier.code).where(Tier.code.in_(tier_codes))))
        if tier_codes - known:
            errors["params.percents"] = [f"unknown tiers: {', '.join(sorted(tier_codes - known))}"]
    if errors:
        raise InvalidRule("the rule names things that do not exist: see errors", errors=errors)
    return clean


def _definition(rule: EarnRule) -> dict[str, Any]:
    values = {name: getattr(rule, name) for name in DEFINITION_FIELDS}
    for moment in ("starts_at", "ends_at"):
        if values[moment] is not None:
            values[moment] = values[moment].isoformat()
    return values


def create_rule(
    session: Session, definition: dict[str, Any], *, actor: str, now: datetime
) -> EarnRule:
    clean = validate_definition(session, definition)
    rule = EarnRule(**clean, created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="rule.create",
        subject_type="earn_rule",
        subject_id=rule.id,
        now=now,
        after=_definition(rule),
    )
    return rule


def get_rule(session: Session, rule_id: int) -> EarnRule:
    rule = session.get(EarnRule, rule_id) if 0 < rule_id <= MAX_ID else None
    if rule is None:
        raise NotFound(f"no rule has id {rule_id}", field="rule_id")
    return rule


def update_rule(
    session: Session, rule_id: int, changes: dict[str, Any], *, actor: str, now: datetime
) -> EarnRule:
    """Change a rule from now on. Sales already recorded keep the points they earned."""
    rule = get_rule(session, rule_id)
    if rule.archived_at is not None:
        raise InvalidRule("an archived rule cannot change; create a new one", field="rule_id")
    before = _definition(rule)
    clean = validate_definition(session, before | changes)
    for name, value in clean.items():
        setattr(rule, name, value)
    rule.updated_at = now
    session.flush()
    new_config_version(session)
    record(
        session,
        actor=actor,
        action="rule.update",
        subject_type="earn_rule",
        subject_id=rule.id,
        now=now,
        before=before,
        after=_definition(rule),
    )
    return rule


def archive_rule(session: Session, rule_id: int, *, actor: str, now: datetime) -> EarnRule:
    rule = get_rule(session, rule_id)
    if rule.archived_at is None:
        rule.archived_at = now
        new_config_version(session)
        record(
            session,
            actor=actor,
            action="rule.archive",
            subject_type="earn_rule",
            subject_id=rule.id,
            now=now,
        )
    return rule


def list_rules(session: Session, *, include_archived: bool = False) -> list[EarnRule]:
    query = select(EarnRule).order_by(EarnRule.priority, EarnRule.id)
    if not include_archived:
        query = query.where(EarnRule.archived_at.is_(None))
    return list(session.scalars(query))


_rules = EarnRule.__table__
_LIVE_RULES = select(_rules).where(_rules.c.archived_at.is_(None))


_live_rules_cache: VersionedCache[list[Rule]] = VersionedCache()


def live_rules(session: Session, config_version: str | None = None) -> list[Rule]:
    """Every rule not archived, as the engine takes them; the engine checks windows itself,
    so a sale dated yesterday (an offline till) meets yesterday's rules. Read once per process
    and configuration version (loyalty/versioned.py)."""
    if config_version is None:
        config_version = get_program(session).config_version
    return _live_rules_cache.get(session, config_version, lambda: _read_live_rules(session))


def _read_live_rules(session: Session) -> list[Rule]:
    rows = session.connection().execute(_LIVE_RULES)
    return [
        Rule(
            id=row.id,
            name=row.name,
            kind=RuleKind(row.kind),
            params=row.params,
            priority=row.priority,
            stackable=row.stackable,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            tiers=frozenset(row.tiers) if row.tiers else None,
            stores=frozenset(row.stores) if row.stores else None,
            cap_points=row.cap_points,
            cap_period=CapPeriod(row.cap_period) if row.cap_period else None,
        )
        for row in rows
    ]


def capped(rules: Iterable[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.cap_points is not None and rule.cap_period is not None]


def cap_used_subquery(rule_id: int, *, since: bool) -> Any:
    """The points rule `rule_id` has given `:member_id`, since `:since_<rule_id>` when `since`
    (a day, month or year cap) or ever: a scalar subquery, so that a sale can read every cap
    with its other facts in one round trip. Built once per shape by the caller."""
    query = select(func.coalesce(func.sum(EarnAward.points), 0)).where(
        EarnAward.member_id == bindparam("member_id"),
        EarnAward.rule_id == rule_id,
        EarnAward.withdrawn.is_(False),
    )
    if since:
        query = query.where(
            EarnAward.awarded_at >= bindparam(f"since_{rule_id}", type_=UtcDateTime())
        )
    return query.scalar_subquery()


def cap_period_starts(rules: Iterable[Rule], local: datetime) -> dict[int, datetime | None]:
    """Where each capped rule's current period began (None: the cap is for ever)."""
    return {
        rule.id: period_start(rule.cap_period, local)
        for rule in capped(rules)
        if rule.cap_period is not None
    }


_INSERT_AWARD = insert(EarnAward.__table__)  # type: ignore[arg-type]


def record_awards(
    session: Session,
    *,
    member_id: int,
    sale_id: int | None,
    awards: Iterable[Award],
    awarded_at: datetime,
) -> None:
    """Keep what each rule gave (the program's own base rate is not a rule)."""
    rows = [
        {
            "member_id": member_id,
            "rule_id": award.rule_id,
            "sale_id": sale_id,
            "points": award.points,
            "awarded_at": awarded_at,
            "withdrawn": False,
        }
        for award in awards
        if award.rule_id is not None
    ]
    if rows:
        session.connection().execute(_INSERT_AWARD, rows)


def withdraw_awards(session: Session, sale_id: int) -> None:
    """A sale returned in full or voided gives its capped bonuses back to their periods."""
    awards: Table = EarnAward.__table__  # type: ignore[assignment]
    session.connection().execute(
        update(awards).where(awards.c.sale_id == sale_id).values(withdrawn=True)
    )
