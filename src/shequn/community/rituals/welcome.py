"""Welcome messages (a ritual of arrival): templates with variables, rendered for members who
join a group or are added by a staff account, and queued in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select
from sqlalchemy.orm import aliased

from shequn.community.common import ids_in, view
from shequn.community.outbox.rules import WELCOME_DEADLINE, Message
from shequn.community.rituals.rules import Trigger, check_template, render_template, trigger_of
from shequn.community.tables import (
    communities,
    groups,
    staff_accounts,
    staff_assignments,
    welcome_templates,
)
from shequn.context import Ctx
from shequn.errors import NotFound
from shequn.events.service import record_event
from shequn.i18n import translate
from shequn.ids import new_id
from shequn.members.tables import members

NAMES_SHOWN = 10  # of the members a batch welcome names


@dataclass(frozen=True)
class Arrival:
    """A member who joined a group (`group_id`) or was added by a staff account."""

    member_id: str
    group_id: str | None = None
    staff_account_id: str | None = None


def create_template(
    ctx: Ctx, *, trigger: str, body: str, community_id: str | None = None
) -> dict[str, Any]:
    """A welcome template; the newest active one of a community (or, failing that, of the
    tenant) is the one used."""
    kind = trigger_of(trigger)
    text = check_template(body)
    now = ctx.clock.now()
    row: dict[str, Any] = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("tpl"),
        "community_id": community_id,
        "trigger": kind.value,
        "body": text,
        "active": True,
        "created_at": now,
    }
    with ctx.db.transaction() as tx:
        if (
            community_id is not None
            and tx.execute(
                select(communities.c.id).where(
                    communities.c.tenant_id == ctx.tenant_id, communities.c.id == community_id
                )
            ).first()
            is None
        ):
            raise NotFound("community_not_found", id=community_id)
        tx.execute(welcome_templates.insert().values(row))
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="WelcomeTemplateCreated",
            subject_type="welcome_template",
            subject_id=row["id"],
            payload={"trigger": kind.value, "community_id": community_id},
        )
    return view(row)


def list_templates(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(welcome_templates)
            .where(welcome_templates.c.tenant_id == ctx.tenant_id)
            .order_by(welcome_templates.c.id)
        ).all()
    return [view(r) for r in rows]


def template_for(tx: Connection, tenant_id: str, trigger: Trigger, community_id: str | None) -> str:
    """The text to render: the community's newest active template, the tenant's, or the
    default in the tenant's language."""
    t = welcome_templates.c
    candidates = [community_id, None] if community_id is not None else [None]
    for scope in candidates:
        condition = t.community_id.is_(None) if scope is None else t.community_id == scope
        body = tx.execute(
            select(t.body)
            .where(t.tenant_id == tenant_id, t.trigger == trigger.value, t.active, condition)
            .order_by(t.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if body is not None:
            return str(body)
    return translate(f"community.welcome.default.{trigger.value}")


def welcome_messages(
    tx: Connection,
    *,
    tenant_id: str,
    trigger: Trigger,
    community_id: str | None,
    arrivals: Sequence[Arrival],
    at: datetime,
) -> list[Message]:
    """One message per arrival, rendered set-based, to the staff account that welcomes it: a
    group's owner, or the member's own account."""
    if not arrivals:
        return []
    text = template_for(tx, tenant_id, trigger, community_id)
    member_ids = [a.member_id for a in arrivals]
    referrer = aliased(members)
    people = {
        r.id: r
        for r in tx.execute(
            select(members.c.id, members.c.name, referrer.c.name.label("referrer_name"))
            .outerjoin(
                referrer,
                and_(
                    referrer.c.tenant_id == members.c.tenant_id,
                    referrer.c.id == members.c.referrer_id,
                ),
            )
            .where(members.c.tenant_id == tenant_id, ids_in(tx, members.c.id, member_ids))
        ).all()
    }
    group_ids = sorted({a.group_id for a in arrivals if a.group_id})
    group_rows = {
        r.id: r
        for r in (
            tx.execute(
                select(groups.c.id, groups.c.name, groups.c.staff_account_id).where(
                    groups.c.tenant_id == tenant_id, ids_in(tx, groups.c.id, group_ids)
                )
            ).all()
            if group_ids
            else []
        )
    }
    own_accounts = dict(
        tx.execute(
            select(staff_assignments.c.member_id, staff_assignments.c.staff_account_id).where(
                staff_assignments.c.tenant_id == tenant_id,
                ids_in(tx, staff_assignments.c.member_id, member_ids),
            )
        ).all()
    )
    community = None
    if community_id is not None:
        community = tx.execute(
            select(communities.c.name, communities.c.member_title).where(
                communities.c.tenant_id == tenant_id, communities.c.id == community_id
            )
        ).first()
    staff_names = dict(
        tx.execute(
            select(staff_accounts.c.id, staff_accounts.c.name).where(
                staff_accounts.c.tenant_id == tenant_id
            )
        ).all()
    )
    out = []
    for arrival in arrivals:
        person = people.get(arrival.member_id)
        group = group_rows.get(arrival.group_id) if arrival.group_id else None
        account = (
            arrival.staff_account_id
            or (group.staff_account_id if group is not None else None)
            or own_accounts.get(arrival.member_id)
        )
        body = render_template(
            text,
            {
                "name": person.name if person else None,
                "referrer": person.referrer_name if person else None,
                "group": group.name if group else None,
                "community": community.name if community else None,
                "title": community.member_title if community else None,
                "staff": staff_names.get(account) if account else None,
            },
        )
        scope = arrival.group_id or arrival.staff_account_id or "-"
        out.append(
            Message(
                dedupe_key=f"welcome:{trigger.value}:{scope}:{arrival.member_id}",
                kind=f"welcome_{trigger.value}",
                body=body,
                staff_account_id=account,
                member_id=arrival.member_id,
                group_id=arrival.group_id,
                due_at=at + WELCOME_DEADLINE if trigger is Trigger.STAFF_ADDED else None,
            )
        )
    return out


def batch_welcome(
    *,
    group_id: str,
    group_name: str,
    staff_account_id: str | None,
    names: Sequence[str],
    run_id: str,
) -> Message:
    """One task for a group's operator to welcome the members a bulk placement brought in
    together (a group greets its newcomers at once)."""
    shown = "、".join(names[:NAMES_SHOWN])
    body = translate("community.welcome.batch", group=group_name, count=len(names), names=shown)
    return Message(
        dedupe_key=f"welcome:batch:{group_id}:{run_id}",
        kind="welcome_group_batch",
        body=body,
        staff_account_id=staff_account_id,
        group_id=group_id,
        payload={"count": len(names)},
    )
