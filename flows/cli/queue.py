"""`qunflow queue …`: the prospect queue from the command line (list, claim, outcome, assign,
history)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import typer

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.routing.rules import configured_rules
from crm.sales.assign import assign as assign_item
from crm.sales.assign import assign_pool as assign_the_pool
from crm.sales.claims import claim_item, claim_next
from crm.sales.claims import release as release_item
from crm.sales.history import item_actions
from crm.sales.items import get_item
from crm.sales.leases import expire_leases
from crm.sales.listing import SORTS, list_queue
from crm.sales.outcomes import record_outcome
from crm.sales.users import user_id_by_name
from crm.sales.vocabulary import OUTCOMES, AssignStrategy, QueueView
from flows.cli.common import (
    coded,
    engine,
    headings,
    print_json,
    print_table,
    settings,
    t,
    when,
    word,
)

app = typer.Typer(help="Work the prospect queue.", no_args_is_help=True)

_COLUMNS = ("item_id", "contact_id", "name", "tier", "score", "status", "assignee", "sla_due_at")
_STRATEGIES = ", ".join(s.value for s in AssignStrategy)


def _user(name: str) -> int:
    with transaction(engine()) as session:
        return user_id_by_name(session, name)


@app.command("list")
def list_(
    view: str = typer.Option(QueueView.POOL.value, help="pool, mine, team, closed or all."),
    user: str | None = typer.Option(None, "--user", help="Whose queue, for --view mine."),
    sort: str = typer.Option("sla", help=f"Sort key: {', '.join(SORTS)}."),
    desc: bool = typer.Option(False, "--desc", help="Sort descending."),
    limit: int = typer.Option(50, min=1, max=500, help="How many to show."),
    offset: int = typer.Option(0, min=0, help="Skip this many (paging)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """List queue items of a view, SLA due first."""
    uid = _user(user) if user else None
    with transaction(engine()) as session:
        page = list_queue(
            session, view=view, user_id=uid, sort=sort, descending=desc, limit=limit, offset=offset
        )
    if as_json:
        print_json(page)
        return
    rows = coded([dataclasses.asdict(i) for i in page.items], tier="tier", status="queue")
    print_table(rows, {**headings(*_COLUMNS), "name": t("name")})


@app.command()
def claim(
    user: str = typer.Option(..., "--user", help="Who claims."),
    item: int | None = typer.Option(None, "--item", help="A specific item (else the next)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Claim the next prospect in the pool (or one item) with a lease."""
    uid = _user(user)
    zone = settings().zone
    if item is None:
        got = claim_next(engine(), uid, zone=zone)
    else:
        got = claim_item(engine(), item, uid, zone=zone)
    if as_json:
        print_json(got)
        return
    if got is None:
        typer.echo(t("cli.pool_empty"))
        return
    typer.echo(
        t(
            "cli.claimed",
            user=user,
            item=got.item_id,
            contact=got.contact_id,
            until=when(got.lease_expires_at),
        )
    )


@app.command()
def outcome(
    item: int = typer.Argument(..., help="Queue item id."),
    status: str = typer.Argument(..., help=f"One of: {', '.join(OUTCOMES)}."),
    user: str | None = typer.Option(
        None, "--user", help="Who records it (default: the item's holder)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (required for lost)."),
    until: str | None = typer.Option(
        None, "--until", help="For snoozed: ISO time with offset, e.g. 2026-03-05T09:00+08:00."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Record an outcome on a held item: contacted, qualified, won, lost, snoozed."""
    moment = None
    if until is not None:
        try:
            moment = datetime.fromisoformat(until)
        except ValueError as exc:
            raise InputError("error.cli.until_bad", value=until) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=settings().zone)
    with transaction(engine()) as session:
        if user is not None:
            uid = user_id_by_name(session, user)
        else:
            holder = get_item(session, item).assignee_id
            if holder is None:
                raise InputError("error.cli.item_unheld", item=item)
            uid = int(holder)
    rules = configured_rules(settings())
    result = record_outcome(engine(), item, uid, status, reason=reason, until=moment, rules=rules)
    if as_json:
        print_json(result)
        return
    typer.echo(t("cli.item_status", item=item, status=word("queue", result.status)))


@app.command()
def release(
    item: int = typer.Argument(..., help="Queue item id."),
    user: str = typer.Option(..., "--user", help="The holder (or a manager)."),
) -> None:
    """Give a held item back to the pool."""
    release_item(engine(), item, _user(user))
    typer.echo(t("cli.item_released", item=item))


@app.command()
def assign(
    item: int = typer.Argument(..., help="Queue item id."),
    to: str = typer.Option(..., "--to", help="Who gets it."),
    by: str = typer.Option(..., "--by", help="The manager assigning it."),
) -> None:
    """Assign or reassign an item (managers and admins)."""
    result = assign_item(engine(), item, _user(to), _user(by))
    typer.echo(t("cli.item_assigned", item=item, user=result.assignee))


@app.command("assign-pool")
def assign_pool(
    strategy: str = typer.Option(
        AssignStrategy.ROUND_ROBIN.value, help=f"How to hand out pool items: {_STRATEGIES}."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Hand pool items to active sales staff within their claim limits."""
    result = assign_the_pool(engine(), strategy, zone=settings().zone, actor="cli")
    if as_json:
        print_json(result)
        return
    who = "、".join(f"{name} {n}" for name, n in result.by_user.items())
    typer.echo(t("cli.pool_assigned", n=result.assigned, who=who))


@app.command()
def expire(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Return items whose lease ran out to the pool."""
    n = expire_leases(engine())
    if as_json:
        print_json({"expired": n})
        return
    typer.echo(t("cli.expired", n=n))


@app.command()
def history(
    item: int = typer.Argument(..., help="Queue item id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show an item's follow-up history, newest first (as the prospect page shows it)."""
    from flows.i18n import keyed_text  # only this command says stored notes

    with transaction(engine()) as session:
        found = get_item(session, item)
        actions = item_actions(session, [item])
    if as_json:
        print_json({"item": found, "actions": actions})
        return
    typer.echo(t("cli.item_status", item=item, status=word("queue", found.status)))
    said = keyed_text(t, found.outcome_key, None, found.outcome_reason)
    if said:
        typer.echo(t("cli.item_reason", reason=said))
    rows = [
        {
            "at": a.at,
            "action": word("audit", f"queue.{a.action}"),
            "user": a.user or "",
            "note": keyed_text(t, a.note_key, a.note_params, a.note),
        }
        for a in actions
    ]
    print_table(rows, headings("at", "action", "user", "note"))
