"""What placement needs to know of the members it places, read set-based: each member's key
under the policy (region, interest, staff account, lifecycle stage) and its referrer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from shequn.community.common import rows_for_ids
from shequn.community.groups.rules import Joiner, Policy
from shequn.community.tables import community_members, groups, staff_assignments
from shequn.members.rules import StageFacts, derive_stage
from shequn.members.tables import member_tags, members
from shequn.tenancy.repo import load_settings

REGION_TAG = "region:"  # a member tagged `region:上海` is of the region 上海


@dataclass(frozen=True)
class Hints:
    """What the caller says of a joining member (wins over what the member's row says)."""

    region: str | None = None
    interest: str | None = None


def joiners(
    tx: Connection,
    *,
    tenant_id: str,
    community_id: str,
    policy: Policy,
    member_ids: Sequence[str],
    hints: Mapping[str, Hints],
) -> tuple[list[Joiner], dict[str, str]]:
    """The members as placement takes them, in the order given, and for the referrer policy
    the groups of their referrers already in the community."""
    keys: dict[str, str | None] = dict.fromkeys(member_ids)
    referrers: dict[str, str | None] = {}
    placed: dict[str, str] = {}
    t = member_tags.c
    if policy in (Policy.REGION, Policy.INTEREST):
        given = {m: h.region if policy is Policy.REGION else h.interest for m, h in hints.items()}
        keys.update({m: v for m, v in given.items() if v})
        missing = [m for m in member_ids if keys.get(m) is None]
        if policy is Policy.REGION:
            condition = t.tag.startswith(REGION_TAG)
        else:
            carried = (
                select(groups.c.interest)
                .where(
                    groups.c.tenant_id == tenant_id,
                    groups.c.community_id == community_id,
                    groups.c.interest.is_not(None),
                )
                .distinct()
                .scalar_subquery()
            )
            condition = t.tag.in_(carried)
        chosen: dict[str, str] = {}
        for member_id, tag in rows_for_ids(
            tx,
            member_tags,
            "member_id",
            missing,
            ("member_id", "tag"),
            t.tenant_id == tenant_id,
            condition,
        ):
            if member_id not in chosen or tag < chosen[member_id]:
                chosen[member_id] = tag
        if policy is Policy.REGION:
            keys.update({m: tag[len(REGION_TAG) :] or None for m, tag in chosen.items()})
        else:
            keys.update(chosen)
    elif policy is Policy.STAFF_ACCOUNT:
        a = staff_assignments.c
        found = rows_for_ids(
            tx,
            staff_assignments,
            "member_id",
            member_ids,
            ("member_id", "staff_account_id"),
            a.tenant_id == tenant_id,
        )
        keys.update({r[0]: r[1] for r in found})
    elif policy is Policy.LIFECYCLE:
        keys.update(_stages(tx, tenant_id, member_ids))
    elif policy is Policy.REFERRER:
        found = rows_for_ids(
            tx, members, "id", member_ids, ("id", "referrer_id"), members.c.tenant_id == tenant_id
        )
        referrers = {r[0]: r[1] for r in found}
        wanted = sorted({r for r in referrers.values() if r})
        c = community_members.c
        placed = {
            r[0]: r[1]
            for r in rows_for_ids(
                tx,
                community_members,
                "member_id",
                wanted,
                ("member_id", "group_id"),
                c.tenant_id == tenant_id,
                c.community_id == community_id,
                c.group_id.is_not(None),
            )
        }
    out = [Joiner(m, keys.get(m), referrers.get(m)) for m in member_ids]
    return out, placed


def _stages(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> dict[str, str]:
    """Each member's relationship stage (客户 → 用户 → 粉丝 → 朋友) from its facts."""
    criteria = load_settings(tx, tenant_id).stage_criteria
    m, c = members.c, community_members.c
    rows = rows_for_ids(
        tx, members, "id", member_ids, ("id", "paid_order_count"), m.tenant_id == tenant_id
    )
    referred = Counter(
        r[0]
        for r in rows_for_ids(
            tx,
            members,
            "referrer_id",
            member_ids,
            ("referrer_id",),
            m.tenant_id == tenant_id,
            m.lifetime_order_count > 0,
        )
    )
    in_groups = Counter(
        r[0]
        for r in rows_for_ids(
            tx,
            community_members,
            "member_id",
            member_ids,
            ("member_id",),
            c.tenant_id == tenant_id,
            c.group_id.is_not(None),
        )
    )
    return {
        r.id: derive_stage(
            StageFacts(
                paid_order_count=r.paid_order_count,
                referred_buyer_count=referred[r.id],
                group_count=in_groups[r.id],
            ),
            criteria,
        ).value
        for r in rows
    }
