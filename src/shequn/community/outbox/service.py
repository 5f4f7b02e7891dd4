"""The outbox's use cases: queue messages (in the caller's transaction), list them, let an
operator mark a task done or skipped, and register the signed-webhook channels."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from shequn.community.common import ids_in, insert_ignoring, view
from shequn.community.outbox.rules import (
    Adapter,
    Message,
    MessageStatus,
    check_message,
    operator_transition,
    route_message,
)
from shequn.community.tables import outbox_channels, outbox_messages, staff_accounts
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import checked_cursor, new_id
from shequn.webhooks.rules import check_reachable_host, validate_url

MAX_PAGE = 200
CHANNEL_SECRET_PREFIX = "obsec_"


def enqueue_messages(
    tx: Connection, *, tenant_id: str, at: datetime, messages: Sequence[Message]
) -> list[str]:
    """Queue `messages` in the caller's transaction, set-based; a message whose dedupe key the
    tenant's outbox already holds is kept once (the first one). A message without an adapter
    goes where its staff account sends (`rules.route_message`): a bound signed-webhook
    channel, or the account operator's task list. Returns the ids of the messages queued now."""
    if not messages:
        return []
    checked = [check_message(m) for m in messages]
    staff_ids = sorted({m.staff_account_id for m in checked if m.staff_account_id})
    bound: dict[str, str | None] = {}
    if staff_ids:
        bound = dict(
            tx.execute(
                select(staff_accounts.c.id, staff_accounts.c.outbox_channel_id).where(
                    staff_accounts.c.tenant_id == tenant_id,
                    ids_in(tx, staff_accounts.c.id, staff_ids),
                )
            ).all()
        )
    rows = []
    seen: set[str] = set()
    for m in checked:
        if m.dedupe_key in seen:
            continue
        seen.add(m.dedupe_key)
        channel_id = m.channel_id
        adapter = m.adapter
        if adapter is None:
            if channel_id is None and m.staff_account_id is not None:
                channel_id = bound.get(m.staff_account_id)
            adapter = route_message(None, channel_id)
        rows.append(
            {
                "tenant_id": tenant_id,
                "id": new_id("msg"),
                "dedupe_key": m.dedupe_key,
                "adapter": adapter.value,
                "channel_id": channel_id if adapter is Adapter.SIGNED_WEBHOOK else None,
                "kind": m.kind,
                "staff_account_id": m.staff_account_id,
                "member_id": m.member_id,
                "group_id": m.group_id,
                "body": m.body,
                "payload": dict(m.payload),
                "status": MessageStatus.PENDING.value,
                "attempts": 0,
                "due_at": m.due_at,
                "next_attempt_at": at,
                "last_error": None,
                "finished_by": None,
                "finished_at": None,
                "created_at": at,
            }
        )
    # One statement for many rows (SQLAlchemy sends them in batches, each with its RETURNING),
    # which names exactly the rows it kept.
    statement = insert_ignoring(tx, outbox_messages, ("tenant_id", "dedupe_key")).returning(
        outbox_messages.c.id
    )
    return [r for r in tx.execute(statement, rows).scalars() if r is not None]


def _shown(row: Any) -> dict[str, Any]:
    return view(row)


def outbox_page(
    ctx: Ctx,
    *,
    status: str | None = None,
    adapter: str | None = None,
    staff_account_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Messages oldest first (an operator's task list: `adapter=operator_task`,
    `status=pending`, one staff account); pass `next_after` back as `after`."""
    after = checked_cursor(after, "msg")
    if status is not None and status not in set(MessageStatus):
        raise InvalidInput("outbox_status_invalid", status=status[:20])
    if adapter is not None and adapter not in set(Adapter):
        raise InvalidInput("outbox_adapter_invalid", adapter=adapter[:20])
    m = outbox_messages.c
    query = select(outbox_messages).where(m.tenant_id == ctx.tenant_id)
    if status is not None:
        query = query.where(m.status == status)
    if adapter is not None:
        query = query.where(m.adapter == adapter)
    if staff_account_id is not None:
        query = query.where(m.staff_account_id == staff_account_id)
    if after is not None:
        query = query.where(m.id > after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(m.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [_shown(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def _finish(ctx: Ctx, message_id: str, action: str) -> dict[str, Any]:
    now = ctx.clock.now()
    m = outbox_messages.c
    with ctx.db.transaction() as tx:
        row = tx.execute(
            select(outbox_messages)
            .where(m.tenant_id == ctx.tenant_id, m.id == message_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound("outbox_message_not_found", id=message_id)
        target = operator_transition(MessageStatus(row.status), action, Adapter(row.adapter))
        tx.execute(
            update(outbox_messages)
            .where(m.tenant_id == ctx.tenant_id, m.id == message_id, m.status == row.status)
            .values(status=target.value, finished_by=ctx.actor, finished_at=now)
        )
        fresh = tx.execute(
            select(outbox_messages).where(m.tenant_id == ctx.tenant_id, m.id == message_id)
        ).one()
    return _shown(fresh)


def mark_done(ctx: Ctx, *, message_id: str) -> dict[str, Any]:
    """The operator sent the task's message by hand."""
    return _finish(ctx, message_id, "done")


def mark_skipped(ctx: Ctx, *, message_id: str) -> dict[str, Any]:
    """The operator chose not to send it (or gave up on a failed one)."""
    return _finish(ctx, message_id, "skip")


# --- signed-webhook channels ----------------------------------------------------------------


def channel_secret(server_key: str, *, tenant_id: str, channel_id: str, salt: str) -> str:
    """A channel's signing secret, derived from the deployment's key: the database keeps only
    the salt."""
    message = f"shequn.outbox-channel\x00{tenant_id}\x00{channel_id}\x00{salt}".encode()
    return (
        CHANNEL_SECRET_PREFIX + hmac.new(server_key.encode(), message, hashlib.sha256).hexdigest()
    )


def create_channel(
    ctx: Ctx, *, server_key: str, name: str, url: str, allow_private: bool = False
) -> dict[str, Any]:
    """A signed-webhook channel: messages routed to it are POSTed to `url`, signed with the
    secret shown in this answer once. A URL at a private or local address is refused unless
    `allow_private` (the deployment's setting)."""
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > 80:
        raise InvalidInput("field_too_long", field="name", max=80)
    clean_url = validate_url(url)
    check_reachable_host(clean_url, allow_private=allow_private)
    now = ctx.clock.now()
    channel_id = new_id("chn")
    salt = secrets.token_hex(16)
    row = {
        "tenant_id": ctx.tenant_id,
        "id": channel_id,
        "adapter": Adapter.SIGNED_WEBHOOK.value,
        "name": clean_name,
        "url": clean_url,
        "secret_salt": salt,
        "active": True,
        "created_at": now,
    }
    with ctx.db.transaction() as tx:
        tx.execute(outbox_channels.insert().values(row))
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="OutboxChannelCreated",
            subject_type="outbox_channel",
            subject_id=channel_id,
            payload={"name": clean_name, "url": clean_url},
        )
    shown = view(row, drop=("secret_salt",))
    shown["secret"] = channel_secret(
        server_key, tenant_id=ctx.tenant_id, channel_id=channel_id, salt=salt
    )
    return shown


def list_channels(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(outbox_channels)
            .where(outbox_channels.c.tenant_id == ctx.tenant_id)
            .order_by(outbox_channels.c.id)
        ).all()
    return [view(r, drop=("secret_salt",)) for r in rows]


def require_channel(tx: Connection, tenant_id: str, channel_id: str) -> None:
    found = tx.execute(
        select(outbox_channels.c.id).where(
            outbox_channels.c.tenant_id == tenant_id, outbox_channels.c.id == channel_id
        )
    ).first()
    if found is None:
        raise NotFound("outbox_channel_not_found", id=channel_id)
