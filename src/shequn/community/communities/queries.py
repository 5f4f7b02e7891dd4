"""Reads of communities and their members that the other parts of the community share (and
other capabilities may call)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from shequn.community.common import ids_in
from shequn.community.tables import communities, community_members
from shequn.errors import NotFound
from shequn.locks import Lock, take


def require_community(
    tx: Connection, tenant_id: str, community_id: str, *, for_update: bool = False
) -> Row[Any]:
    """The community; `for_update` locks it, which every change of its groups' members does
    first, so that placements in one community follow each other."""
    if for_update:
        take(tx, Lock.COMMUNITIES)
    query = select(communities).where(
        communities.c.tenant_id == tenant_id, communities.c.id == community_id
    )
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("community_not_found", id=community_id)
    return row


def memberships_of(
    tx: Connection, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each member's communities: {member id: [{community_id, role, group_id, joined_at}]}
    (for other capabilities' criteria, such as tiers and growth stages)."""
    out: dict[str, list[dict[str, Any]]] = {m: [] for m in member_ids}
    if not member_ids:
        return out
    c = community_members.c
    rows = tx.execute(
        select(c.member_id, c.community_id, c.role, c.group_id, c.joined_at)
        .where(c.tenant_id == tenant_id, ids_in(tx, c.member_id, list(member_ids)))
        .order_by(c.member_id, c.joined_at)
    ).all()
    for r in rows:
        out[r.member_id].append(
            {
                "community_id": r.community_id,
                "role": r.role,
                "group_id": r.group_id,
                "joined_at": r.joined_at,
            }
        )
    return out
