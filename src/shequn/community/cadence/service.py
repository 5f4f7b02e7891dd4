"""SOPs and content cadence: the tenant's cadence limits, scheduling posts and SOP steps for
a staff account, a group or a segment (refused whole, with the figure, when a step falls in
quiet hours, crowds a day, comes too close to another, or would send any member more than its
monthly budget), queuing due posts through the outbox, and the copy library (文案库) with
Chinese full-text search.

The budget is one per member per local month, across SOPs, mass sends and groups: scheduling
reserves it for every member the post reaches, in the same statement for all of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    true,
    update,
)
from sqlalchemy.sql import ColumnElement

from shequn.community.cadence.rules import (
    Cadence,
    PostKind,
    Step,
    TargetKind,
    budget_breach,
    check_cadence_fields,
    check_schedule,
    month_of,
    parse_steps,
    posts_per_month,
    refuse_breach,
    search_terms,
    step_times,
    target_kind,
)
from shequn.community.cadence.tables import (
    cadence_settings,
    copy_entries,
    message_budgets,
    scheduled_posts,
    sops,
)
from shequn.community.common import dialect_insert, view
from shequn.community.communities.rules import clean_text
from shequn.community.gatherings.rules import check_local_date, check_moment
from shequn.community.groups.queries import require_group
from shequn.community.outbox import Message, enqueue_messages
from shequn.community.tables import community_members, groups, staff_accounts, staff_assignments
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.members.tables import member_tags
from shequn.tenancy.repo import load_settings

RUN_CHUNK = 500
MAX_SEARCH = 50


def load_cadence(tx: Connection, tenant_id: str) -> Cadence:
    row = tx.execute(
        select(cadence_settings).where(cadence_settings.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        return Cadence()
    return Cadence(
        row.posts_per_day, row.min_gap_minutes, row.quiet_start, row.quiet_end, row.monthly_budget
    )


def _cadence_view(c: Cadence) -> dict[str, int]:
    return {
        "posts_per_day": c.posts_per_day,
        "min_gap_minutes": c.min_gap_minutes,
        "quiet_start": c.quiet_start,
        "quiet_end": c.quiet_end,
        "monthly_budget": c.monthly_budget,
    }


def get_cadence(ctx: Ctx) -> dict[str, int]:
    with ctx.db.read() as tx:
        return _cadence_view(load_cadence(tx, ctx.tenant_id))


def set_cadence(ctx: Ctx, *, fields: Mapping[str, Any]) -> dict[str, int]:
    """Change some of the cadence limits (the others keep their value)."""
    changed = check_cadence_fields(fields)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        merged = {**_cadence_view(load_cadence(tx, ctx.tenant_id)), **changed}
        statement = dialect_insert(tx, cadence_settings)
        tx.execute(
            statement.values(
                tenant_id=ctx.tenant_id, updated_at=now, **merged
            ).on_conflict_do_update(
                index_elements=["tenant_id"], set_={**merged, "updated_at": now}
            )
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("CadenceChanged", "tenant", ctx.tenant_id, changed)],
        )
    return merged


def _recipients(tx: Connection, tenant_id: str, kind: TargetKind, target_id: str) -> Select[Any]:
    """The members a post to the target reaches, as a query (never a list in Python)."""
    if kind is TargetKind.GROUP:
        require_group(tx, tenant_id, target_id)
        c = community_members.c
        return select(c.member_id).where(c.tenant_id == tenant_id, c.group_id == target_id)
    if kind is TargetKind.STAFF_ACCOUNT:
        found = tx.execute(
            select(staff_accounts.c.id).where(
                staff_accounts.c.tenant_id == tenant_id, staff_accounts.c.id == target_id
            )
        ).first()
        if found is None:
            raise NotFound("staff_account_not_found", id=target_id)
        s = staff_assignments.c
        return select(s.member_id).where(s.tenant_id == tenant_id, s.staff_account_id == target_id)
    t = member_tags.c
    clean = target_id.strip()
    if not clean or len(clean) > 40:
        raise InvalidInput("cadence_segment_invalid")
    return select(t.member_id).where(t.tenant_id == tenant_id, t.tag == clean)


def schedule_in(
    tx: Connection,
    *,
    tenant_id: str,
    kind: TargetKind,
    target_id: str,
    items: Sequence[tuple[datetime, str, PostKind]],
    sop_id: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Check and write a schedule for one target in the caller's transaction: every limit
    holds or nothing is written."""
    zone = load_settings(tx, tenant_id).time_zone
    cadence = load_cadence(tx, tenant_id)
    for at, _, _ in items:
        if at <= now:
            raise InvalidInput("schedule_in_past", at=at.isoformat())
    recipients = _recipients(tx, tenant_id, kind, target_id)
    times = [at for at, _, post_kind in items if post_kind is PostKind.POST]
    p = scheduled_posts.c
    if times:
        existing = list(
            tx.execute(
                select(p.send_at).where(
                    p.tenant_id == tenant_id,
                    p.target_kind == kind.value,
                    p.target_id == target_id,
                    p.kind == PostKind.POST.value,
                    p.send_at >= min(times) - timedelta(days=2),
                    p.send_at <= max(times) + timedelta(days=2),
                )
            ).scalars()
        )
        check_schedule(times, existing=existing, cadence=cadence, time_zone=zone)
    needed = posts_per_month(times, zone)
    take(tx, Lock.MESSAGE_BUDGETS)
    b = message_budgets.c
    count = int(tx.execute(select(func.count()).select_from(recipients.subquery())).scalar_one())
    if needed and count:
        most = {
            month: ("", int(used))
            for month, used in tx.execute(
                select(b.month, func.max(b.used))
                .where(
                    b.tenant_id == tenant_id,
                    b.month.in_(sorted(needed)),
                    b.member_id.in_(recipients.scalar_subquery()),
                )
                .group_by(b.month)
            ).all()
        }
        refuse_breach(budget_breach(needed, most, cadence.monthly_budget), count)
        for month, n in sorted(needed.items()):
            reached = recipients.subquery()
            # (WHERE true: SQLite reads an ON after a bare FROM as a join's condition)
            chosen = select(
                literal(tenant_id), reached.c.member_id, literal(month), literal(n)
            ).where(true())
            statement = dialect_insert(tx, message_budgets)
            tx.execute(
                statement.from_select(
                    ["tenant_id", "member_id", "month", "used"], chosen
                ).on_conflict_do_update(
                    index_elements=["tenant_id", "member_id", "month"],
                    set_={"used": message_budgets.c.used + statement.excluded.used},
                )
            )
        # The increments above wait for a parallel schedule reaching the same members and
        # then add to what it left: read after them, the budget holds whatever ran beside.
        after = {
            month: ("", int(used) - needed[month])
            for month, used in tx.execute(
                select(b.month, func.max(b.used))
                .where(
                    b.tenant_id == tenant_id,
                    b.month.in_(sorted(needed)),
                    b.member_id.in_(recipients.scalar_subquery()),
                )
                .group_by(b.month)
            ).all()
        }
        refuse_breach(budget_breach(needed, after, cadence.monthly_budget), count)
    rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id("post"),
            "sop_id": sop_id,
            "target_kind": kind.value,
            "target_id": target_id,
            "kind": post_kind.value,
            "body": body,
            "send_at": at,
            "recipients": count,
            "status": "scheduled",
            "queued_at": None,
            "created_at": now,
        }
        for at, body, post_kind in items
    ]
    tx.execute(scheduled_posts.insert(), rows)
    return rows


def _post_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return view(dict(row))


def create_post(
    ctx: Ctx,
    *,
    target_kind: str,
    target_id: str,
    body: str,
    send_at: datetime,
    kind: str = PostKind.POST.value,
) -> dict[str, Any]:
    """Schedule one post (a mass send to a segment, a group post, a staff account's moments
    post) or task, within the cadence and every reached member's budget."""
    chosen = target_kind_of(target_kind)
    text = (body or "").strip()
    if not text or len(text) > 4_000:
        raise InvalidInput("post_body_invalid", max=4_000)
    check_moment(send_at, "send_at")
    try:
        post_kind = PostKind(kind)
    except ValueError:
        raise InvalidInput("post_kind_invalid", kind=kind[:20]) from None
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        rows = schedule_in(
            tx,
            tenant_id=ctx.tenant_id,
            kind=chosen,
            target_id=target_id,
            items=[(send_at.replace(microsecond=0), text, post_kind)],
            sop_id=None,
            now=now,
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "PostScheduled",
                    "scheduled_post",
                    rows[0]["id"],
                    {"target_kind": chosen.value, "target_id": target_id},
                )
            ],
        )
    return _post_view(rows[0])


def target_kind_of(value: str) -> TargetKind:
    return target_kind(value)


def create_sop(
    ctx: Ctx,
    *,
    name: str,
    target_kind: str,
    target_id: str,
    steps: Sequence[Mapping[str, Any]],
    starts_on: date,
) -> dict[str, Any]:
    """An SOP (e.g. a new group's: day 0 welcome, day 1 rules, day 3 first class): each step
    scheduled at its local day and minute from `starts_on`, all or none."""
    clean = clean_text(name, field="name", max_length=80, required=True)
    chosen = target_kind_of(target_kind)
    parsed: list[Step] = parse_steps(steps)
    check_local_date(starts_on, "starts_on")
    now = ctx.clock.now()
    sop_id = new_id("sop")
    with ctx.db.transaction() as tx:
        zone = load_settings(tx, ctx.tenant_id).time_zone
        times = step_times(parsed, starts_on=starts_on.isoformat(), time_zone=zone)
        row = {
            "tenant_id": ctx.tenant_id,
            "id": sop_id,
            "name": clean,
            "target_kind": chosen.value,
            "target_id": target_id,
            "steps": [
                {"day": s.day, "minute": s.minute, "body": s.body, "kind": s.kind.value}
                for s in parsed
            ],
            "starts_on": starts_on.isoformat(),
            "created_at": now,
        }
        tx.execute(sops.insert().values(row))
        posts = schedule_in(
            tx,
            tenant_id=ctx.tenant_id,
            kind=chosen,
            target_id=target_id,
            items=[(at, s.body, s.kind) for at, s in zip(times, parsed, strict=True)],
            sop_id=sop_id,
            now=now,
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("SopScheduled", "sop", sop_id, {"steps": len(parsed)})],
        )
    shown = view(row)
    shown["posts"] = [_post_view(p) for p in posts]
    return shown


def _messages_for(tx: Connection, tenant_id: str, post: Any) -> list[Message]:
    """What a due post becomes in the outbox: one message in the group (by its staff
    account), one moments post or task of the staff account, or one per member of the
    segment (by the member's staff account)."""
    kind = TargetKind(post.target_kind)
    key = f"post:{post.id}"
    if kind is TargetKind.GROUP:
        account = tx.execute(
            select(groups.c.staff_account_id).where(
                groups.c.tenant_id == tenant_id, groups.c.id == post.target_id
            )
        ).scalar_one_or_none()
        return [
            Message(
                dedupe_key=key,
                kind=f"sop_{post.kind}",
                body=post.body,
                staff_account_id=account,
                group_id=post.target_id,
                payload={"post_id": post.id, "sop_id": post.sop_id},
            )
        ]
    if kind is TargetKind.STAFF_ACCOUNT:
        return [
            Message(
                dedupe_key=key,
                kind=f"sop_{post.kind}",
                body=post.body,
                staff_account_id=post.target_id,
                payload={"post_id": post.id, "sop_id": post.sop_id},
            )
        ]
    t, s = member_tags.c, staff_assignments.c
    rows = tx.execute(
        select(t.member_id, s.staff_account_id)
        .outerjoin(staff_assignments, and_(s.tenant_id == t.tenant_id, s.member_id == t.member_id))
        .where(t.tenant_id == tenant_id, t.tag == post.target_id)
        .order_by(t.member_id)
    ).all()
    return [
        Message(
            dedupe_key=f"{key}:{r.member_id}",
            kind=f"sop_{post.kind}",
            body=post.body,
            staff_account_id=r.staff_account_id,
            member_id=r.member_id,
            payload={"post_id": post.id, "sop_id": post.sop_id},
        )
        for r in rows
    ]


def run_due_posts(ctx: Ctx, *, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Queue every scheduled post whose time has come through the outbox (a chunk per
    transaction); a post is queued once."""
    now = ctx.clock.now()
    p = scheduled_posts.c
    posts = messages = 0
    while True:
        with ctx.db.transaction() as tx:
            due = tx.execute(
                select(scheduled_posts)
                .where(p.tenant_id == ctx.tenant_id, p.status == "scheduled", p.send_at <= now)
                .order_by(p.send_at, p.id)
                .limit(RUN_CHUNK)
            ).all()
            if not due:
                break
            out: list[Message] = []
            for post in due:
                out += _messages_for(tx, ctx.tenant_id, post)
            messages += len(enqueue_messages(tx, tenant_id=ctx.tenant_id, at=now, messages=out))
            tx.execute(
                update(scheduled_posts)
                .where(
                    p.tenant_id == ctx.tenant_id,
                    p.id.in_([d.id for d in due]),
                    p.status == "scheduled",
                )
                .values(status="queued", queued_at=now)
            )
        posts += len(due)
        if progress is not None:
            progress(len(due))
    return {"posts": posts, "messages": messages}


def month_used(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """A member's messages this local month against the budget."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        zone = load_settings(tx, ctx.tenant_id).time_zone
        month = month_of(now, zone)
        b = message_budgets.c
        used = tx.execute(
            select(b.used).where(
                b.tenant_id == ctx.tenant_id, b.member_id == member_id, b.month == month
            )
        ).scalar_one_or_none()
        budget = load_cadence(tx, ctx.tenant_id).monthly_budget
    return {"member_id": member_id, "month": month, "used": int(used or 0), "budget": budget}


# --- the copy library (文案库) -----------------------------------------------------------


# The copy library's FTS5 table on SQLite (migration 0014), and what its tokens column holds.
COPY_FTS = "copy_entries_fts"
TOKENS_MAX = 8_000


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def segment(text: str) -> list[str]:
    """The words of a Chinese (or mixed) text, as jieba's search mode cuts them."""
    return search_terms(list(_jieba().cut_for_search(text))) if text else []


def _tokens(text: str) -> str:
    """jieba's words of the text, in order and as often as they occur (a copy that says a word
    more often ranks higher for it), cut at a word within the column's 8,000 characters."""
    words = [w.strip().lower() for w in _jieba().cut_for_search(text)]
    joined = " ".join(w for w in words if w and any(ch.isalnum() for ch in w))
    if len(joined) <= TOKENS_MAX:
        return joined
    return joined[: TOKENS_MAX + 1].rsplit(" ", 1)[0]


def add_copy(ctx: Ctx, *, title: str, body: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    """A copy (文案) for the library, segmented for search."""
    clean = clean_text(title, field="title", max_length=120, required=True)
    text = (body or "").strip()
    if not text or len(text) > 4_000:
        raise InvalidInput("post_body_invalid", max=4_000)
    clean_tags = sorted({clean_text(t, field="tags", max_length=40, required=True) for t in tags})
    now = ctx.clock.now()
    row = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("copy"),
        "title": clean,
        "body": text,
        "tags": clean_tags,
        "tokens": _tokens(" ".join([clean, text, *clean_tags])),
        "created_at": now,
    }
    with ctx.db.transaction() as tx:
        tx.execute(copy_entries.insert().values(row))
    return view(row, drop=("tokens",))


def _fts_match(terms: Sequence[str]) -> str:
    """An FTS5 query asking for every term, each quoted as a phrase."""
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search_copy(ctx: Ctx, *, q: str, limit: int = 20) -> dict[str, Any]:
    """Copies matching every word of the query (jieba's words), ranked: on PostgreSQL full
    text over the segmented words (`ts_rank`, with the GIN index of migration 0014), on SQLite
    the FTS5 table the triggers of migration 0014 keep in step (`bm25`); the best first, then
    by id."""
    if len(q) > 200:
        raise InvalidInput("field_too_long", field="q", max=200)
    limit = max(1, min(limit, MAX_SEARCH))
    terms = segment(q)
    c = copy_entries.c
    with ctx.db.read() as tx:
        query = select(copy_entries).where(c.tenant_id == ctx.tenant_id)
        if terms:
            if tx.dialect.name == "postgresql":
                # The same expression as the index's, so that the planner can use it.
                vector = func.to_tsvector(literal_column("'simple'::regconfig"), c.tokens)
                wanted = func.plainto_tsquery(
                    literal_column("'simple'::regconfig"), " ".join(terms)
                )
                # Normalised by the copy's length (1 + log of its words), as bm25 is.
                query = query.where(vector.op("@@")(wanted)).order_by(
                    func.ts_rank(vector, wanted, 1).desc(), c.id
                )
            else:
                fts = table(COPY_FTS, column("tenant_id"), column("copy_id"))
                whole: ColumnElement[Any] = literal_column(COPY_FTS)
                query = (
                    query.join(fts, and_(fts.c.tenant_id == c.tenant_id, fts.c.copy_id == c.id))
                    .where(fts.c.tenant_id == ctx.tenant_id, whole.op("MATCH")(_fts_match(terms)))
                    .order_by(func.bm25(whole), c.id)
                )
        else:
            query = query.order_by(c.id.desc())
        rows = tx.execute(query.limit(limit)).all()
    return {"q": q, "terms": terms, "items": [view(r, drop=("tokens",)) for r in rows]}
