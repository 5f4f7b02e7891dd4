"""Staff accounts (个人号矩阵): create and change them, give a member to an account by policy,
record the members an account added on the platform, and read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from shequn.community.common import ids_in, insert_ignoring, local_day, local_minute, view
from shequn.community.communities.rules import clean_text
from shequn.community.outbox.service import enqueue_messages, require_channel
from shequn.community.rituals.rules import Trigger
from shequn.community.rituals.welcome import Arrival, welcome_messages
from shequn.community.staff.rules import (
    DEFAULT_DAILY_ADD_LIMIT,
    DEFAULT_FRIEND_CAP,
    MAX_FRIEND_CAP,
    Account,
    AssignPolicy,
    Channel,
    assign_policy_of,
    candidates,
    format_hours,
    load_bp,
    near_full,
    parse_hours,
    unavailable,
)
from shequn.community.tables import staff_accounts, staff_assignments
from shequn.context import Ctx
from shequn.db import violated_constraint
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import checked_cursor, new_id
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.tenancy.repo import load_settings

DEFAULT_HOURS = "09:00-22:00"
MAX_DAILY_ADD_LIMIT = 5_000


def account_view(row: Any, *, today: str | None = None) -> dict[str, Any]:
    shown = view(row, drop=("work_start", "work_end", "adds_day", "assign_seq"))
    shown["working_hours"] = format_hours(row.work_start, row.work_end)
    shown["adds_today"] = row.adds_today if today is None or row.adds_day == today else 0
    shown["load_bp"] = load_bp(row.member_count, row.friend_cap)
    shown["near_full"] = near_full(row.member_count, row.friend_cap)
    return shown


def require_account(
    tx: Connection, tenant_id: str, account_id: str, *, for_update: bool = False
) -> Any:
    if for_update:
        take(tx, Lock.STAFF_ACCOUNTS)
    query = select(staff_accounts).where(
        staff_accounts.c.tenant_id == tenant_id, staff_accounts.c.id == account_id
    )
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("staff_account_not_found", id=account_id)
    return row


def _checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit in (("name", 80), ("persona", 80), ("operator", 80), ("region", 40)):
        if name in fields:
            out[name] = clean_text(
                fields[name], field=name, max_length=limit, required=name == "name"
            )
    if "region" in out:
        out["region"] = out["region"] or None
    if "external_id" in fields:
        out["external_id"] = (
            clean_text(fields["external_id"], field="external_id", max_length=80) or None
        )
    if "channel" in fields:
        try:
            out["channel"] = Channel(fields["channel"]).value
        except ValueError:
            raise InvalidInput(
                "staff_channel_invalid", channel=str(fields["channel"])[:20]
            ) from None
    if "friend_cap" in fields:
        cap = fields["friend_cap"]
        if not 1 <= cap <= MAX_FRIEND_CAP:
            raise InvalidInput("friend_cap_invalid", max=MAX_FRIEND_CAP)
        out["friend_cap"] = cap
    if "daily_add_limit" in fields:
        limit = fields["daily_add_limit"]
        if not 1 <= limit <= MAX_DAILY_ADD_LIMIT:
            raise InvalidInput("daily_add_limit_invalid", max=MAX_DAILY_ADD_LIMIT)
        out["daily_add_limit"] = limit
    if "working_hours" in fields:
        out["work_start"], out["work_end"] = parse_hours(fields["working_hours"])
    for name in ("backup_account_id", "outbox_channel_id"):
        if name in fields:
            out[name] = fields[name]
    return out


def create_account(
    ctx: Ctx,
    *,
    name: str,
    persona: str = "",
    operator: str = "",
    channel: str = Channel.PERSONAL_WECHAT.value,
    external_id: str | None = None,
    region: str | None = None,
    friend_cap: int = DEFAULT_FRIEND_CAP,
    daily_add_limit: int = DEFAULT_DAILY_ADD_LIMIT,
    working_hours: str = DEFAULT_HOURS,
    backup_account_id: str | None = None,
    outbox_channel_id: str | None = None,
) -> dict[str, Any]:
    """A staff account with its persona (e.g. 宝妈 IP), the person who runs it, its channel,
    its friend cap (5,000 unless told), daily add limit, working hours and backup account."""
    fields = _checked_fields(
        {
            "name": name,
            "persona": persona,
            "operator": operator,
            "channel": channel,
            "external_id": external_id,
            "region": region,
            "friend_cap": friend_cap,
            "daily_add_limit": daily_add_limit,
            "working_hours": working_hours,
            "backup_account_id": backup_account_id,
            "outbox_channel_id": outbox_channel_id,
        }
    )
    now = ctx.clock.now()
    row = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("stf"),
        **fields,
        "status": "active",
        "member_count": 0,
        "adds_day": None,
        "adds_today": 0,
        "last_assigned_at": None,
        "assign_seq": 0,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with ctx.db.transaction() as tx:
            if backup_account_id is not None:
                require_account(tx, ctx.tenant_id, backup_account_id)
            if outbox_channel_id is not None:
                require_channel(tx, ctx.tenant_id, outbox_channel_id)
            tx.execute(staff_accounts.insert().values(row))
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event("StaffAccountCreated", "staff_account", row["id"], {"name": row["name"]})
                ],
            )
            return account_view(require_account(tx, ctx.tenant_id, row["id"]))
    except IntegrityError as exc:
        if violated_constraint(exc) == "uq_staff_accounts_tenant_id_name":
            raise Conflict("staff_account_name_taken", name=row["name"]) from None
        raise


def update_account(ctx: Ctx, *, account_id: str, **patch: Any) -> dict[str, Any]:
    """Change an account's persona, operator, limits, hours, backup, channel or status
    (`active` or `paused`)."""
    status = patch.pop("status", None)
    fields = _checked_fields(patch)
    if status is not None:
        if status not in ("active", "paused"):
            raise InvalidInput("staff_status_invalid", status=str(status)[:20])
        fields["status"] = status
    if fields.get("backup_account_id") == account_id:
        raise InvalidInput("backup_is_self")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        if fields.get("backup_account_id") is not None:
            require_account(tx, ctx.tenant_id, fields["backup_account_id"])
        if fields.get("outbox_channel_id") is not None:
            require_channel(tx, ctx.tenant_id, fields["outbox_channel_id"])
        current = require_account(tx, ctx.tenant_id, account_id, for_update=True)
        if current.status in ("leaving", "left") and "status" in fields:
            raise Conflict("staff_account_leaving", id=account_id)
        if fields:
            tx.execute(
                update(staff_accounts)
                .where(
                    staff_accounts.c.tenant_id == ctx.tenant_id, staff_accounts.c.id == account_id
                )
                .values(**fields, updated_at=now)
            )
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event(
                        "StaffAccountChanged",
                        "staff_account",
                        account_id,
                        {"fields": sorted(fields)},
                    )
                ],
            )
        return account_view(require_account(tx, ctx.tenant_id, account_id))


def get_account(ctx: Ctx, *, account_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        today = local_day(ctx.clock.now(), load_settings(tx, ctx.tenant_id).time_zone)
        return account_view(require_account(tx, ctx.tenant_id, account_id), today=today)


def list_accounts(ctx: Ctx, *, after: str | None = None, limit: int = 100) -> dict[str, Any]:
    after = checked_cursor(after, "stf")
    s = staff_accounts.c
    query = select(staff_accounts).where(s.tenant_id == ctx.tenant_id)
    if after is not None:
        query = query.where(s.id > after)
    with ctx.db.read() as tx:
        today = local_day(ctx.clock.now(), load_settings(tx, ctx.tenant_id).time_zone)
        rows = tx.execute(query.order_by(s.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [account_view(r, today=today) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


# --- assignment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Clockface:
    """The tenant's local day and minute now."""

    day: str
    minute: int


def clockface(tx: Connection, tenant_id: str, now: datetime) -> Clockface:
    zone = load_settings(tx, tenant_id).time_zone
    return Clockface(local_day(now, zone), local_minute(now, zone))


def as_account(row: Any, day: str) -> Account:
    return Account(
        id=row.id,
        member_count=row.member_count,
        friend_cap=row.friend_cap,
        adds_today=row.adds_today if row.adds_day == day else 0,
        daily_add_limit=row.daily_add_limit,
        work_start=row.work_start,
        work_end=row.work_end,
        region=row.region,
        backup_id=row.backup_account_id,
        active=row.status == "active",
        assign_seq=row.assign_seq,
    )


def _take_one(tx: Connection, tenant_id: str, account_id: str, day: str, now: datetime) -> bool:
    """Count one more member on the account if it still has room and adds left today (a
    conditional update: two assignments racing for the last place cannot both have it)."""
    s = staff_accounts.c
    others = staff_accounts.alias("others")
    result = tx.execute(
        update(staff_accounts)
        .where(
            s.tenant_id == tenant_id,
            s.id == account_id,
            s.status == "active",
            s.member_count < s.friend_cap,
            or_(s.adds_day.is_(None), s.adds_day != day, s.adds_today < s.daily_add_limit),
        )
        .values(
            member_count=s.member_count + 1,
            adds_today=case((s.adds_day == day, s.adds_today + 1), else_=1),
            adds_day=day,
            last_assigned_at=now,
            assign_seq=select(func.coalesce(func.max(others.c.assign_seq), 0) + 1)
            .where(others.c.tenant_id == tenant_id)
            .scalar_subquery(),
            updated_at=now,
        )
    )
    return result.rowcount == 1


def assign_member(
    ctx: Ctx, *, member_id: str, policy: str | None = None, region: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Give the member to a staff account by `policy` (round robin, least loaded, region, the
    referrer's account), skipping accounts that are full, off duty or at their daily add
    limit; the account's operator gets the welcome to send within 20 seconds. A member
    already assigned is answered as it is (replayed)."""
    chosen = assign_policy_of(policy)
    wanted_region = clean_text(region, field="region", max_length=40) or None
    for attempt in range(2):
        try:
            return _assign(ctx, member_id, chosen, wanted_region)
        except IntegrityError as exc:
            if attempt or violated_constraint(exc) not in (None, "pk_staff_assignments"):
                raise
    raise AssertionError("unreachable")


def _assignment(tx: Connection, tenant_id: str, member_id: str) -> Any:
    return tx.execute(
        select(staff_assignments).where(
            staff_assignments.c.tenant_id == tenant_id, staff_assignments.c.member_id == member_id
        )
    ).first()


def _assign(
    ctx: Ctx, member_id: str, policy: AssignPolicy, region: str | None
) -> tuple[dict[str, Any], bool]:
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        existing = _assignment(tx, ctx.tenant_id, member_id)
        if existing is not None:
            return view(existing), True
        face = clockface(tx, ctx.tenant_id, now)
        rows = tx.execute(
            select(staff_accounts).where(staff_accounts.c.tenant_id == ctx.tenant_id)
        ).all()
        accounts = [as_account(r, face.day) for r in rows]
        referrer_account = None
        if member.referrer_id is not None:
            found = _assignment(tx, ctx.tenant_id, member.referrer_id)
            referrer_account = found.staff_account_id if found is not None else None
        ranked = candidates(
            accounts,
            policy,
            minute=face.minute,
            region=region,
            referrer_account_id=referrer_account,
        )
        take(tx, Lock.STAFF_ACCOUNTS)
        account_id = next(
            (a for a in ranked if _take_one(tx, ctx.tenant_id, a, face.day, now)), None
        )
        if account_id is None:
            reasons = sorted({r.value for a in accounts if (r := unavailable(a, face.minute))})
            raise Conflict("no_staff_account_available", reasons=", ".join(reasons) or "-")
        row = {
            "tenant_id": ctx.tenant_id,
            "member_id": member_id,
            "staff_account_id": account_id,
            "via": policy.value,
            "state": None,
            "assigned_at": now,
        }
        tx.execute(staff_assignments.insert().values(row))
        _after_assignments(tx, ctx, [(member_id, account_id)], now=now)
        return view(row), False


def _after_assignments(
    tx: Connection, ctx: Ctx, pairs: Sequence[tuple[str, str]], *, now: datetime
) -> None:
    """Events, warnings of accounts now at 90 %, and the welcomes to send."""
    items = [Event("StaffAssigned", "member", m, {"staff_account_id": a}) for m, a in pairs]
    touched = sorted({a for _, a in pairs})
    counts = tx.execute(
        select(
            staff_accounts.c.id, staff_accounts.c.member_count, staff_accounts.c.friend_cap
        ).where(
            staff_accounts.c.tenant_id == ctx.tenant_id, ids_in(tx, staff_accounts.c.id, touched)
        )
    ).all()
    added = {a: sum(1 for _, b in pairs if b == a) for a in touched}
    for account_id, count, cap in counts:
        if near_full(count, cap) and not near_full(count - added[account_id], cap):
            items.append(
                Event(
                    "StaffAccountNearlyFull",
                    "staff_account",
                    account_id,
                    {"member_count": count, "friend_cap": cap},
                )
            )
    record_events(tx, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=items)
    enqueue_messages(
        tx,
        tenant_id=ctx.tenant_id,
        at=now,
        messages=welcome_messages(
            tx,
            tenant_id=ctx.tenant_id,
            trigger=Trigger.STAFF_ADDED,
            community_id=None,
            arrivals=[Arrival(m, staff_account_id=a) for m, a in pairs],
            at=now,
        ),
    )


def record_adds(
    tx: Connection, ctx: Ctx, adds: Sequence[tuple[str, str, str | None]], *, now: datetime
) -> int:
    """Members a staff account added on the platform (`(member, account, state)`), set-based:
    each becomes the account's member unless it already belongs to an account (the platform
    already counted it against the account's cap). Returns how many were new."""
    if not adds:
        return 0
    day = clockface(tx, ctx.tenant_id, now).day
    rows = [
        {
            "tenant_id": ctx.tenant_id,
            "member_id": m,
            "staff_account_id": a,
            "via": "add",
            "state": state,
            "assigned_at": now,
        }
        for m, a, state in sorted({(m, a, s) for m, a, s in adds})
    ]
    inserted = tx.execute(
        insert_ignoring(tx, staff_assignments, ("tenant_id", "member_id"))
        .values(rows)
        .returning(staff_assignments.c.member_id, staff_assignments.c.staff_account_id)
    ).all()
    if not inserted:
        return 0
    per_account: dict[str, int] = {}
    for _, account_id in inserted:
        per_account[account_id] = per_account.get(account_id, 0) + 1
    take(tx, Lock.STAFF_ACCOUNTS)
    s = staff_accounts.c
    tx.execute(
        update(staff_accounts)
        .where(s.tenant_id == bindparam("t"), s.id == bindparam("a"))
        .values(
            member_count=s.member_count + bindparam("n"),
            adds_today=case(
                (s.adds_day == day, s.adds_today + bindparam("n")), else_=bindparam("n")
            ),
            adds_day=day,
            updated_at=now,
        ),
        [{"t": ctx.tenant_id, "a": a, "n": n} for a, n in sorted(per_account.items())],
    )
    _after_assignments(tx, ctx, [(m, a) for m, a in inserted], now=now)
    return len(inserted)


def add_member(
    ctx: Ctx, *, account_id: str, member_id: str, state: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The account added the member on the platform (through its contact-me code, whose
    `state` of at most 30 characters comes back with the add)."""
    if state is not None and not 1 <= len(state) <= 30:
        raise InvalidInput("state_invalid", max=30)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        account = require_account(tx, ctx.tenant_id, account_id)
        if account.status == "left":
            raise Conflict("staff_account_left", id=account_id)
        existing = _assignment(tx, ctx.tenant_id, member_id)
        if existing is not None:
            if existing.staff_account_id != account_id:
                raise Conflict(
                    "member_has_staff_account", staff_account_id=existing.staff_account_id
                )
            return view(existing), True
        record_adds(tx, ctx, [(member_id, account_id, state)], now=now)
        return view(_assignment(tx, ctx.tenant_id, member_id)), False


def members_of(
    ctx: Ctx, *, account_id: str, after: str | None = None, limit: int = 200
) -> dict[str, Any]:
    a = staff_assignments.c
    query = select(staff_assignments).where(
        a.tenant_id == ctx.tenant_id, a.staff_account_id == account_id
    )
    if after is not None:
        query = query.where(a.member_id > after)
    with ctx.db.read() as tx:
        require_account(tx, ctx.tenant_id, account_id)
        rows = tx.execute(query.order_by(a.member_id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [view(r) for r in page],
        "next_after": page[-1].member_id if len(rows) > limit else None,
    }
