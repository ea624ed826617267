"""`loyalty offers …`, `loyalty coupons …`, `loyalty rewards …`: offers, codes and the rewards
catalogue from the command line, validated and audited exactly as the API does (the same
services, the same field messages). loyalty/cli.py registers COMMANDS."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from loyalty.commandline import JSON_FILE, actor, clock, read_json, refusal, table, unit_of_work
from loyalty.coupons import offers, rewards, services
from loyalty.coupons.codes import DEFAULT_CHARSET, CodeSpec
from loyalty.errors import DomainError


@click.group("offers", short_help="List, add, change and archive offers.")
def offers_group() -> None:
    """Offers: what a coupon gives, when and to whom (audited)."""


@offers_group.command("list", short_help="List the offers with what is left of their limits.")
@click.option("--all", "include_archived", is_flag=True, help="archived offers too")
def list_offers(include_archived: bool) -> None:  # noqa: FBT001 - a click flag
    """Offers by id: kind, value, redemptions and what is left of their budget."""
    with unit_of_work() as session:
        found = offers.list_offers(session, include_archived=include_archived)
    if not found:
        click.echo("no offers")
        return
    rows = [
        (
            str(o.id),
            o.definition["name"],
            o.definition["kind"],
            str(o.definition["value"]),
            o.status,
            f"{o.redeemed_count:,}",
            "-" if o.budget_left is None else f"{o.budget_left:,} {o.budget_unit}",
        )
        for o in found
    ]
    headings = ("id", "name", "kind", "value", "status", "redeemed", "budget left")
    click.echo(table(headings, rows))


@offers_group.command("add", short_help="Add the offer in a JSON file.")
@click.argument("path", metavar="FILE.json", type=JSON_FILE)
def add_offer(path: Path) -> None:
    """Add the offer FILE.json defines (the API's fields); a refusal names every field."""
    definition = read_json(path)
    with unit_of_work() as session:
        try:
            offer = offers.create_offer(session, definition, actor=actor(), now=clock.now())
        except DomainError as exc:
            click.echo(refusal(str(path), exc), err=True)
            sys.exit(1)
    click.echo(f"offer {offer.id} created: {offer.definition['name']}")


@offers_group.command("change", short_help="Change an offer from a JSON file of fields.")
@click.argument("offer_id", metavar="ID", type=int)
@click.argument("path", metavar="FILE.json", type=JSON_FILE)
def change_offer(offer_id: int, path: Path) -> None:
    """Change the fields FILE.json names; coupons already redeemed keep what they gave."""
    changes = read_json(path)
    if not isinstance(changes, dict):
        raise click.ClickException(f"{path} must hold one JSON object: the fields to change")
    with unit_of_work() as session:
        try:
            offer = offers.update_offer(session, offer_id, changes, actor=actor(), now=clock.now())
        except DomainError as exc:
            click.echo(refusal(f"offer {offer_id}", exc), err=True)
            sys.exit(1)
    click.echo(f"offer {offer.id} changed (version {offer.version})")


@offers_group.command("archive", short_help="Stop an offer's coupons at once.")
@click.argument("offer_id", metavar="ID", type=int)
def archive_offer(offer_id: int) -> None:
    """No coupon of the offer is redeemed or issued from now on; its history stays."""
    with unit_of_work() as session:
        offer = offers.archive_offer(session, offer_id, actor=actor(), now=clock.now())
    click.echo(f"offer {offer.id} archived")


@click.group("coupons", short_help="Make, assign, export and cancel coupon codes.")
def coupons_group() -> None:
    """Coupon codes: shared ones, unique ones made in bulk, assigned to members."""


@coupons_group.command("shared", short_help="Add a shared code to an offer.")
@click.argument("offer_id", metavar="OFFER", type=int)
@click.argument("code")
def shared_code(offer_id: int, code: str) -> None:
    """A code many people type ("SUMMER10"), limited by the offer's limits."""
    with unit_of_work() as session:
        coupon = services.create_shared_coupon(
            session, offer_id, code, actor=actor(), now=clock.now()
        )
    click.echo(f"{coupon.code} now gives offer {offer_id}")


@coupons_group.command("generate", short_help="Make unique codes for an offer, as CSV.")
@click.argument("offer_id", metavar="OFFER", type=int)
@click.option("--count", type=int, required=True, help="how many codes")
@click.option("--pattern", help="e.g. SUM-####-#### (# is a random character)")
@click.option("--length", type=int, help="random characters, when there is no pattern")
@click.option("--charset", default=DEFAULT_CHARSET, show_default=True, help="the alphabet")
@click.option("--prefix", default="", help="before every code")
@click.option("--postfix", default="", help="after every code")
@click.option("--check-character", is_flag=True, help="append a check character")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="write the codes to this CSV"
)
def generate(  # noqa: PLR0917 - one option per part of the spec
    offer_id: int,
    count: int,
    pattern: str | None,
    length: int | None,
    charset: str,
    prefix: str,
    postfix: str,
    check_character: bool,  # noqa: FBT001 - a click flag
    out: Path | None,
) -> None:
    """Make COUNT unique codes (never one another coupon has), committed batch by batch with
    a progress bar on stderr; an interrupted run resumes with `loyalty run-jobs`."""
    spec = CodeSpec(
        pattern=pattern,
        length=length if pattern or length else 8,
        charset=charset,
        prefix=prefix,
        postfix=postfix,
        check_character=check_character,
    )
    with unit_of_work() as session:
        try:
            batch = services.request_codes(
                session, offer_id, spec, count, actor=actor(), now=clock.now()
            )
        except DomainError as exc:
            click.echo(refusal("the codes", exc), err=True)
            sys.exit(1)
        session.commit()
        with click.progressbar(length=count, label="codes", file=sys.stderr) as bar:
            done = services.generate_codes(
                session, batch.id, clock.now, checkpoint=session.commit, progress=bar.update
            )
        if out is not None:
            with out.open("w", encoding="utf-8", newline="") as file:
                for chunk in services.export_codes(session, batch.id):
                    file.write(chunk)
    click.echo(
        f"batch {done.id}: {done.made:,} codes made" + (f", written to {out}" if out else "")
    )


@coupons_group.command("assign", short_help="Give members a coupon of an offer (once each).")
@click.argument("offer_id", metavar="OFFER", type=int)
@click.argument("members", metavar="IDS.txt", type=JSON_FILE)
def assign(offer_id: int, members: Path) -> None:
    """Each member id in IDS.txt (one per line) gets a coupon of the offer; members who had
    one from an earlier assignment get no second one. Committed a batch at a time with a
    progress bar on stderr; an interrupted run resumes with `loyalty run-jobs`."""
    lines = members.read_text(encoding="utf-8").split()
    ids = [int(line) for line in lines if line.isdigit()]
    with unit_of_work() as session:
        try:
            job = services.request_assignment(
                session, offer_id, ids, actor=actor(), now=clock.now()
            )
        except DomainError as exc:
            click.echo(refusal(str(members), exc), err=True)
            sys.exit(1)
        session.commit()
        with click.progressbar(length=job.requested, label="members", file=sys.stderr) as bar:
            services.assign_pending(
                session, clock.now, checkpoint=session.commit, progress=bar.update
            )
        done = services.get_assignment(session, job.id)
    click.echo(
        f"{done.assigned:,} assigned, {done.already_had:,} already had one, "
        f"{done.not_members:,} not active members"
    )


@coupons_group.command("cancel", short_help="Cancel a coupon (a reward's points come back).")
@click.argument("code")
def cancel(code: str) -> None:
    """Cancel a coupon; a reward's coupon never used gives its points back."""
    with unit_of_work() as session:
        coupon = rewards.cancel_coupon(session, code, actor=actor(), now=clock.now())
    click.echo(f"{coupon.code} is {coupon.status}")


@click.group("rewards", short_help="The rewards catalogue members buy with points.")
def rewards_group() -> None:
    """Rewards: coupons of an offer, for points, with stock and a limit per member."""


@rewards_group.command("list", short_help="List the rewards and their stock.")
def list_rewards() -> None:
    """What each reward costs and gives, and how many are left."""
    with unit_of_work() as session:
        found = rewards.list_rewards(session, include_inactive=True)
    rows = [
        (
            str(r.id),
            r.name,
            f"{r.points_cost:,}",
            r.gives,
            "-" if r.left is None else f"{r.left:,}",
        )
        for r in found
    ]
    click.echo(table(("id", "name", "points", "gives", "left"), rows) if rows else "no rewards")


@rewards_group.command("add", short_help="Add a reward to the catalogue.")
@click.argument("offer_id", metavar="OFFER", type=int)
@click.option("--name", required=True)
@click.option("--points", "points_cost", type=int, required=True, help="what it costs")
@click.option("--stock", type=int, help="how many there are (none: no limit)")
@click.option("--per-member", "per_member_limit", type=int, help="claims per member")
def add_reward(
    offer_id: int, name: str, points_cost: int, stock: int | None, per_member_limit: int | None
) -> None:
    """A coupon of OFFER that members buy with points."""
    with unit_of_work() as session:
        try:
            reward = rewards.create_reward(
                session,
                name=name,
                offer_id=offer_id,
                points_cost=points_cost,
                stock=stock,
                per_member_limit=per_member_limit,
                refund_unused=True,
                actor=actor(),
                now=clock.now(),
            )
        except DomainError as exc:
            click.echo(refusal("the reward", exc), err=True)
            sys.exit(1)
    click.echo(f"reward {reward.id} added: {reward.name} for {reward.points_cost:,} points")


COMMANDS: list[click.Command] = [offers_group, coupons_group, rewards_group]
