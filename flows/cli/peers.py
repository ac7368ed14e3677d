"""`qunflow peers …`: peer groups (同行群) our operator accounts join, and the daily join plan."""

from __future__ import annotations

import dataclasses

import typer

from crm.core.db import transaction
from crm.core.vocabulary import JoinMethod, PeerStatus, PeerTaskState
from crm.outreach.peer_plan import plan_joins, task_list
from crm.outreach.peer_requests import plan_friend_requests, record_request
from crm.outreach.peers import (
    add_peer,
    list_peers,
    mark_joined,
    mark_left,
    mark_requested,
    reset_peer,
)
from crm.reports.peer_yield import peer_yield
from flows.cli.common import coded, engine, headings, print_json, print_table, settings, t, word

app = typer.Typer(
    help="Peer groups (同行群): join them within each account's daily cap, harvest members.",
    no_args_is_help=True,
)
_JSON = typer.Option(False, "--json", help="Print one JSON document.")
_TASK_COLUMNS = ("id", "account", "due", "due_now", "task_kind", "peer_group", "join_ref",
                 "contact_id", "text")  # fmt: skip


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The peer group's name (unique)."),
    community: str | None = typer.Option(None, "--community", help="Whose community it is."),
    join: JoinMethod = typer.Option(JoinMethod.QR, "--join", help="qr | link | introduction"),
    ref: str | None = typer.Option(None, "--ref", help="The QR/link URL, or who introduces us."),
    theme: str | None = typer.Option(None, "--theme", help="What the group is about."),
    notes: str | None = typer.Option(None, "--notes", help="Anything an operator should know."),
    account: str | None = typer.Option(None, "--account", help="Our account to join it."),
    as_json: bool = _JSON,
) -> None:
    """Add a peer group to join."""
    peer = add_peer(
        engine(),
        name,
        community=community,
        join_method=join,
        join_ref=ref,
        theme=theme,
        notes=notes,
        account=account,
    )
    if as_json:
        print_json(peer)
    else:
        typer.echo(
            t("cli.peer_status", name=f"{peer.id} {peer.name}", status=word("peer", peer.status))
        )


@app.command("list")
def list_(
    status: PeerStatus | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = _JSON,
) -> None:
    """List peer groups with their status and our account in them."""
    with transaction(engine()) as session:
        peers = list_peers(session, status=status)
    if as_json:
        print_json(peers)
        return
    print_table(
        coded([dataclasses.asdict(p) for p in peers], join_method="join", status="peer"),
        headings("id", "name", "community", "join_method", "status", "account", "joined_at"),
    )


@app.command("plan")
def plan(
    account: str | None = typer.Option(None, "--account", help="Show only this account's list."),
    purpose: str | None = typer.Option(
        None, "--purpose", help="What we do, stated in each friend request (添加时直接表明目的)."
    ),
    locale: str | None = typer.Option(None, "--locale", help="Template locale: zh-CN or en."),
    as_json: bool = _JSON,
) -> None:
    """Plan today's joins and friend requests within each account's caps; print the task list."""
    plan_joins(engine(), settings=settings())
    plan_friend_requests(engine(), settings=settings(), purpose=purpose, locale=locale)
    _print_tasks(account, as_json)


@app.command("tasks")
def tasks_(
    account: str | None = typer.Option(None, "--account", help="Only this account's list."),
    as_json: bool = _JSON,
) -> None:
    """Today's open tasks by due time, in each account's local time (✓: due now)."""
    _print_tasks(account, as_json)


def _print_tasks(account: str | None, as_json: bool) -> None:
    with transaction(engine()) as session:
        tasks = task_list(session, settings=settings(), account=account)
    if as_json:
        print_json(tasks)
        return
    rows = [
        {
            **dataclasses.asdict(task),
            "due": f"{task.due_at:%Y-%m-%d %H:%M} {task.zone}" if task.due_at else task.day,
            "due_now": "✓" if task.due_now else "",
            "task_kind": word("peer_task", task.kind),
        }
        for task in tasks
    ]
    print_table(
        rows, {**headings(*_TASK_COLUMNS), "due": t("cli.col.due"), "due_now": t("cli.col.due_now")}
    )


@app.command("joined")
def joined(
    name: str = typer.Argument(..., help="The peer group's name or id."),
    account: str | None = typer.Option(None, "--account", help="Our account that joined."),
    as_json: bool = _JSON,
) -> None:
    """Record that our account joined a peer group (counts against its group_join cap)."""
    peer = mark_joined(engine(), name, settings=settings(), account=account)
    if as_json:
        print_json(peer)
    else:
        typer.echo(t("cli.peer_joined", name=peer.name, account=peer.account))


@app.command("left")
def left(
    name: str = typer.Argument(..., help="The peer group's name or id."),
    removed: bool = typer.Option(False, "--removed", help="The group's owner removed us."),
    as_json: bool = _JSON,
) -> None:
    """Record that our account left (or was removed from) a peer group."""
    peer = mark_left(engine(), name, removed=removed)
    if as_json:
        print_json(peer)
    else:
        typer.echo(t("cli.peer_status", name=peer.name, status=word("peer", peer.status)))


@app.command("requested")
def requested(
    name: str = typer.Argument(..., help="The peer group's name or id."),
    account: str | None = typer.Option(None, "--account", help="Our account that asked."),
    note: str | None = typer.Option(None, "--note", help="Who we asked, what is pending."),
    as_json: bool = _JSON,
) -> None:
    """Record that we asked to be let in (no join is planned for it until joined or reset)."""
    peer = mark_requested(engine(), name, account=account, note=note)
    if as_json:
        print_json(peer)
    else:
        typer.echo(t("cli.peer_requested", name=peer.name, account=peer.account or "—"))


@app.command("reset")
def reset(
    name: str = typer.Argument(..., help="The peer group's name or id."),
    as_json: bool = _JSON,
) -> None:
    """Put a requested, left or removed peer group back to join."""
    peer = reset_peer(engine(), name)
    if as_json:
        print_json(peer)
    else:
        typer.echo(t("cli.peer_status", name=peer.name, status=word("peer", peer.status)))


@app.command("request")
def request(
    task: int = typer.Argument(..., help="The friend request's task id (from peers plan)."),
    outcome: PeerTaskState = typer.Option(
        ..., "--outcome", help="done (sent) | accepted | ignored"
    ),
) -> None:
    """Record a friend request as sent, accepted or ignored."""
    record_request(engine(), task, outcome)
    typer.echo(t("cli.friend_request", task=task, outcome=word("peer_task_state", outcome)))


@app.command("yield")
def yield_(as_json: bool = _JSON) -> None:
    """Peer groups ranked by yield: harvested, accepted, reached active / prospect / paid."""
    with transaction(engine()) as session:
        rows = peer_yield(session)
    if as_json:
        print_json(rows)
        return
    print_table(
        [dataclasses.asdict(r) for r in rows],
        headings(
            "peer_group",
            "account",
            "joined_at",
            "harvested",
            "requests",
            "accepted",
            "active",
            "prospect",
            "paid",
        ),
    )
