"""Reads and the writes every placement shares: the community locked for a placement, the
groups with room, the rows of groups to open, and how a group is shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from shequn.community.communities.rules import group_name
from shequn.community.groups.rules import GroupRoom, OpenedGroup, Policy, is_oversize
from shequn.community.tables import groups, venues
from shequn.errors import NotFound
from shequn.events.service import Event
from shequn.locks import Lock, take

# The group column each keyed policy matches on.
KEY_COLUMNS: dict[Policy, str] = {
    Policy.REGION: "region",
    Policy.INTEREST: "interest",
    Policy.STAFF_ACCOUNT: "staff_account_id",
    Policy.LIFECYCLE: "lifecycle_stage",
}


def venue_limit(tx: Connection, tenant_id: str, venue_id: str | None) -> int | None:
    if venue_id is None:
        return None
    return tx.execute(
        select(venues.c.platform_limit).where(
            venues.c.tenant_id == tenant_id, venues.c.id == venue_id
        )
    ).scalar_one_or_none()


def rooms(
    tx: Connection, tenant_id: str, community_id: str, policy: Policy, *, also: Sequence[str] = ()
) -> list[GroupRoom]:
    """The community's groups with room, with their key under `policy` (and the groups in
    `also`, full or not: the referrers' own)."""
    g = groups.c
    key = g[KEY_COLUMNS[policy]] if policy in KEY_COLUMNS else None
    columns = [g.id, g.number, g.size, g.cap] + ([key] if key is not None else [])
    condition = g.size < g.cap
    if also:
        condition = condition | g.id.in_(sorted(set(also)))
    rows = tx.execute(
        select(*columns).where(g.tenant_id == tenant_id, g.community_id == community_id, condition)
    ).all()
    return [GroupRoom(r[0], r[1], r[4] if key is not None else None, r[2], r[3]) for r in rows]


def opened_rows(
    community: Any,
    opened: Sequence[OpenedGroup],
    policy: Policy,
    *,
    at: datetime,
) -> list[dict[str, Any]]:
    """Rows of the groups a plan opens, named by the community's pattern, in its venue."""
    key_column = KEY_COLUMNS.get(policy)
    out = []
    for group in opened:
        keys: dict[str, str | None] = dict.fromkeys(
            ("region", "interest", "staff_account_id", "lifecycle_stage")
        )
        if key_column is not None and group.key is not None:
            keys[key_column] = group.key
        out.append(
            {
                "tenant_id": community.tenant_id,
                "id": group.id,
                "community_id": community.id,
                "venue_id": community.venue_id,
                "number": group.number,
                "name": group_name(
                    community.group_name_pattern,
                    community=community.name,
                    title=community.member_title,
                    number=group.number,
                    region=keys["region"],
                    interest=keys["interest"],
                ),
                "size_class": community.size_class,
                "cap": group.cap,
                "size": 0,
                **keys,
                "imported": False,
                "external_id": None,
                "split_from": None,
                "created_at": at,
                "updated_at": at,
            }
        )
    return out


def opened_events(rows: Sequence[dict[str, Any]]) -> list[Event]:
    return [
        Event(
            "GroupOpened",
            "group",
            r["id"],
            {"community_id": r["community_id"], "name": r["name"], "cap": r["cap"]},
        )
        for r in rows
    ]


# Members named by one `MembersPlaced` event at most.
MEMBERS_PER_EVENT = 1_000


def placed_events(
    community_id: str, policy: str, by_group: Mapping[str, Sequence[str]]
) -> list[Event]:
    """`MembersPlaced` events of the community for members placed together, each naming at
    most `MEMBERS_PER_EVENT` members under their groups (`{"groups": {group_id: [member_id,
    …]}}`): a bulk placement writes a few events, not one per group."""
    out: list[Event] = []
    pending: dict[str, list[str]] = {}
    count = 0

    def close() -> None:
        nonlocal pending, count
        if pending:
            out.append(
                Event(
                    "MembersPlaced",
                    "community",
                    community_id,
                    {"policy": policy, "members": count, "groups": pending},
                )
            )
        pending, count = {}, 0

    for group_id, member_ids in by_group.items():
        for member_id in member_ids:
            pending.setdefault(group_id, []).append(member_id)
            count += 1
            if count == MEMBERS_PER_EVENT:
                close()
    close()
    return out


def group_view(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    data = dict(row._mapping) if isinstance(row, Row) else dict(row)
    data.pop("tenant_id", None)
    data["room"] = max(0, data["cap"] - data["size"])
    data["oversize"] = is_oversize(data["size"], data["cap"])
    return data


def require_group(
    tx: Connection, tenant_id: str, group_id: str, *, for_update: bool = False
) -> Row[Any]:
    if for_update:
        take(tx, Lock.GROUPS)
    query = select(groups).where(groups.c.tenant_id == tenant_id, groups.c.id == group_id)
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("group_not_found", id=group_id)
    return row


def join_target(tx: Connection, tenant_id: str, community_id: str) -> Row[Any] | None:
    """The group a join code points at: the first opened with room."""
    g = groups.c
    return tx.execute(
        select(groups)
        .where(g.tenant_id == tenant_id, g.community_id == community_id, g.size < g.cap)
        .order_by(g.number)
        .limit(1)
    ).first()
