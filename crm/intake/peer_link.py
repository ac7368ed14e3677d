"""A member list imported for a peer group (``ingest peer-group --peer``): the list is read as
that group's source, harvested by the account that joined it, and the source is linked to the
group, so each harvested contact leads back to the join (which account, when)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, update

from crm.core.db import transaction
from crm.core.errors import InputError, NotFound
from crm.core.vocabulary import SourceKind
from crm.intake.pipeline import ingest_path
from crm.intake.records import IngestReport
from crm.models import OperatorAccount, PeerGroup, SourceInstance


def ingest_peer_list(
    engine: Engine, path: str | Path, peer: str, *, now: datetime | None = None
) -> IngestReport:
    """Import a member list harvested in a peer group our account joined, linked to the join."""
    with transaction(engine) as session:
        found = session.execute(
            select(PeerGroup.id, PeerGroup.name, PeerGroup.joined_at, OperatorAccount.handle)
            .outerjoin(OperatorAccount, OperatorAccount.id == PeerGroup.account_id)
            .where(PeerGroup.name == peer)
        ).one_or_none()
    if found is None:
        raise NotFound("error.intake.peer_missing", peer=peer)
    peer_id, name, joined_at, handle = found
    if joined_at is None or handle is None:
        raise InputError("error.intake.peer_not_joined", peer=peer)
    report = ingest_path(engine, "peer-group", path, group=name, account=handle, peer=True, now=now)
    with transaction(engine) as session:
        source = session.scalar(
            select(SourceInstance.id).where(
                SourceInstance.kind == SourceKind.PEER_GROUP.value, SourceInstance.key == name
            )
        )
        session.execute(
            update(PeerGroup).where(PeerGroup.id == peer_id).values(source_instance_id=source)
        )
    return report
