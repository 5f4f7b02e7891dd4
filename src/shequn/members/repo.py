"""Every write of a member row, and the reads other domains make of members.

The members table is this domain's: the referral tree (`shequn.referrals`) decides who is
bound to whom and asks these functions to write the chain and the team counts; a payment asks
them to write the purchase facts. Every update of a member row moves its `version` (a trigger
does it), which is what a write that relies on a copy of the member checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, func, insert, select, update

from shequn.batch import WriteBatch
from shequn.errors import NotFound
from shequn.locks import Lock, lock_rows, take
from shequn.members.rules import PurchaseFacts, facts_after_purchase
from shequn.members.tables import member_tags, members
from shequn.snapshot import Snapshot


def require_member(
    tx: Connection, tenant_id: str, member_id: str, *, for_update: bool = False
) -> Row[Any]:
    if for_update:
        take(tx, Lock.MEMBERS)
    query = select(members).where(members.c.tenant_id == tenant_id, members.c.id == member_id)
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("member_not_found", id=member_id)
    return row


def member_or_none(tx: Connection, tenant_id: str, member_id: str) -> Row[Any] | None:
    return tx.execute(
        select(members).where(members.c.tenant_id == tenant_id, members.c.id == member_id)
    ).first()


def lock_members(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> None:
    """Lock member rows in id order."""
    lock_rows(tx, Lock.MEMBERS, members, tenant_id, member_ids)


def insert_member(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    name: str,
    phone: str | None,
    external_id: str | None,
    tier_id: str | None,
    at: datetime,
) -> None:
    tx.execute(
        insert(members).values(
            tenant_id=tenant_id,
            id=member_id,
            name=name,
            phone=phone,
            external_id=external_id,
            tier_id=tier_id,
            direct_count=0,
            team_count=0,
            paid_order_count=0,
            lifetime_order_count=0,
            paid_total_fen=0,
            max_order_fen=0,
            version=0,
            created_at=at,
            updated_at=at,
        )
    )


def member_id_taken_by(
    tx: Connection, tenant_id: str, *, column: str, value: str, exclude: str | None = None
) -> bool:
    """Whether another member has `value` in the unique column `column` (phone, external id)."""
    query = select(members.c.id).where(members.c.tenant_id == tenant_id, members.c[column] == value)
    if exclude:
        query = query.where(members.c.id != exclude)
    return tx.execute(query).first() is not None


def set_profile(tx: Connection, tenant_id: str, member_id: str, values: Mapping[str, Any]) -> None:
    """Change profile fields (name, phone, external id, tier); the caller holds the row."""
    take(tx, Lock.MEMBERS)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(**values)
    )


def set_tier(tx: Connection, tenant_id: str, member_id: str, tier_id: str, at: datetime) -> None:
    take(tx, Lock.MEMBERS)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(tier_id=tier_id, updated_at=at)
    )


def count_by_tier(tx: Connection, tenant_id: str) -> dict[str, int]:
    rows = tx.execute(
        select(members.c.tier_id, func.count())
        .where(members.c.tenant_id == tenant_id, members.c.tier_id.is_not(None))
        .group_by(members.c.tier_id)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


def referred_buyers(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> dict[str, int]:
    """How many members each of `member_ids` referred directly have ever paid an order.
    Counted when asked, so that a payment writes no row of the referrer's (a popular agent's
    downline would otherwise all queue on it)."""
    if not member_ids:
        return {}
    rows = tx.execute(
        select(members.c.referrer_id, func.count())
        .where(
            members.c.tenant_id == tenant_id,
            members.c.referrer_id.in_(list(member_ids)),
            members.c.lifetime_order_count > 0,
        )
        .group_by(members.c.referrer_id)
    ).all()
    found = {r[0]: int(r[1]) for r in rows}
    return {m: found.get(m, 0) for m in member_ids}


# --- the referral chain and the team counts, as the referral tree decides them ---------------


def add_to_team_counts(
    tx: Connection, tenant_id: str, member_ids: Any, delta: int, *, referrer_id: str | None = None
) -> None:
    """Add `delta` to the team count of `member_ids` (a list or a subquery of ids), and one to
    the direct count of `referrer_id` if it is among them."""
    take(tx, Lock.MEMBERS)
    values: dict[str, Any] = {"team_count": members.c.team_count + delta}
    if referrer_id is not None:
        values["direct_count"] = members.c.direct_count + case(
            (members.c.id == referrer_id, 1), else_=0
        )
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id.in_(member_ids))
        .values(values)
    )


def add_to_direct_count(tx: Connection, tenant_id: str, member_id: str, delta: int) -> None:
    take(tx, Lock.MEMBERS)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(direct_count=members.c.direct_count + delta)
    )


def set_referrer_columns(
    tx: Connection,
    tenant_id: str,
    member_id: str,
    *,
    referrer_id: str | None,
    ancestor_2: str | None = None,
    ancestor_3: str | None = None,
    source: str | None,
    at: datetime,
    chain_known: bool = True,
) -> None:
    """Record whom the member is bound to, how and when; with `chain_known` its 2nd and 3rd
    ancestors too (otherwise `refresh_chains` sets them)."""
    take(tx, Lock.MEMBERS)
    values: dict[str, Any] = {
        "referrer_id": referrer_id,
        "binding_source": source,
        "bound_at": at,
        "updated_at": at,
    }
    if chain_known:
        values.update(ancestor_2=ancestor_2, ancestor_3=ancestor_3)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(values)
    )


def refresh_chains(tx: Connection, tenant_id: str, member_ids: Any, ancestor_at: Any) -> None:
    """Set the chain columns of `member_ids` (a subquery of ids) from `ancestor_at(depth)`, a
    correlated subquery the tree gives for each depth."""
    take(tx, Lock.MEMBERS)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id.in_(member_ids))
        .values(referrer_id=ancestor_at(1), ancestor_2=ancestor_at(2), ancestor_3=ancestor_at(3))
    )


# --- the buyer of an order: its chain, its tier, its purchase facts ---------------------------

BUYER_PREFIX = "buyer_"
BUYER_COLUMNS = (
    "id",
    "tier_id",
    "referrer_id",
    "ancestor_2",
    "ancestor_3",
    "phone",
    "external_id",
    "team_count",
    "paid_order_count",
    "lifetime_order_count",
    "paid_total_fen",
    "max_order_fen",
    "first_paid_at",
    "last_paid_at",
    "version",
)


@dataclass(frozen=True)
class Buyer:
    """The member paying an order: its chain, its tier, its purchase facts, and the version of
    its row they were read at."""

    id: str
    tier_id: str | None
    referrer_id: str | None
    ancestor_2: str | None
    ancestor_3: str | None
    phone: str | None
    external_id: str | None
    team_count: int
    facts: PurchaseFacts
    version: int

    @property
    def paid_total_fen(self) -> int:
        return self.facts.paid_total_fen

    @property
    def max_order_fen(self) -> int:
        return self.facts.max_order_fen

    @property
    def lifetime_order_count(self) -> int:
        return self.facts.lifetime_order_count

    @property
    def uplines(self) -> list[str]:
        return [a for a in (self.referrer_id, self.ancestor_2, self.ancestor_3) if a]


def buyer_columns() -> list[Any]:
    """The buyer's columns labelled with `BUYER_PREFIX`, for a use case that reads the buyer
    in the same statement as its other rows."""
    return [members.c[name].label(BUYER_PREFIX + name) for name in BUYER_COLUMNS]


def buyer_from_row(row: Mapping[Any, Any], prefix: str = BUYER_PREFIX) -> Buyer:
    def col(name: str) -> Any:
        return row[prefix + name]

    return Buyer(
        id=col("id"),
        tier_id=col("tier_id"),
        referrer_id=col("referrer_id"),
        ancestor_2=col("ancestor_2"),
        ancestor_3=col("ancestor_3"),
        phone=col("phone"),
        external_id=col("external_id"),
        team_count=col("team_count"),
        facts=PurchaseFacts(
            paid_order_count=col("paid_order_count"),
            lifetime_order_count=col("lifetime_order_count"),
            paid_total_fen=col("paid_total_fen"),
            max_order_fen=col("max_order_fen"),
            first_paid_at=col("first_paid_at"),
            last_paid_at=col("last_paid_at"),
        ),
        version=col("version"),
    )


def stage_purchase(
    batch: WriteBatch,
    *,
    tenant_id: str,
    buyer: Buyer,
    amount_fen: int,
    at: datetime,
    guarded: bool = False,
) -> Buyer:
    """Add a paid order to the buyer's facts; returns the buyer as it now is (with
    `lifetime_order_count == 1` on the first purchase ever: a fully refunded first order does
    not make the next one a first purchase again).

    The new facts are computed from `buyer` as read, so either the caller has locked the buyer,
    or `guarded` makes the write the batch's guard: it happens only if the row is still at the
    version read (a compare-and-set)."""
    facts = facts_after_purchase(buyer.facts, amount_fen=amount_fen, at=at)
    key = {"tenant_id": tenant_id, "id": buyer.id}
    values = {
        "paid_order_count": facts.paid_order_count,
        "lifetime_order_count": facts.lifetime_order_count,
        "paid_total_fen": facts.paid_total_fen,
        "max_order_fen": facts.max_order_fen,
        "first_paid_at": facts.first_paid_at,
        "last_paid_at": facts.last_paid_at,
        # What the database makes of it anyway (its trigger adds one to the version read).
        "version": buyer.version + 1,
        "updated_at": at,
    }
    if guarded:
        batch.guard(members, key, where={"version": buyer.version}, values=values)
    else:
        batch.update(members, key, values=values)
    return replace(buyer, facts=facts, version=buyer.version + 1)


def record_refund(
    tx: Connection, tenant_id: str, member_id: str, *, amount_fen: int, fully: bool, at: datetime
) -> None:
    """Take a refund off the buyer's facts (a full refund takes the order off its count)."""
    take(tx, Lock.MEMBERS)
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(
            paid_total_fen=members.c.paid_total_fen - amount_fen,
            paid_order_count=members.c.paid_order_count - (1 if fully else 0),
            updated_at=at,
        )
    )


def remember_buyer(snapshot: Snapshot, tenant_id: str, buyer: Buyer) -> None:
    """Keep the buyer as a write found or left it (a copy of an older version does not
    replace a newer one)."""
    snapshot.kind("buyers").put(
        (tenant_id, buyer.id), buyer, unless=lambda held, new: held.version > new.version
    )


def remembered_buyer(snapshot: Snapshot, tenant_id: str, member_id: str) -> Buyer | None:
    """The buyer as last seen, for a write that checks its `version`."""
    found: Buyer | None = snapshot.kind("buyers").get((tenant_id, member_id))
    return found


def forget_buyer(snapshot: Snapshot, tenant_id: str, member_id: str) -> None:
    snapshot.kind("buyers").forget((tenant_id, member_id))


# --- many members at once (an import) ---------------------------------------------------------

BULK_ROWS = 5_000  # rows per statement of the writes below

_NEW_MEMBER = {
    "paid_order_count": 0,
    "lifetime_order_count": 0,
    "paid_total_fen": 0,
    "max_order_fen": 0,
    "first_paid_at": None,
    "last_paid_at": None,
    "version": 0,
    "anonymised_at": None,
}


def insert_members(
    tx: Connection, rows: Sequence[Mapping[str, Any]], tags: Sequence[Mapping[str, str]]
) -> None:
    """Insert new members in bulk: every row names every profile, chain and count column (the
    referral tree worked out the chains and counts, `shequn.referrals.tree.plan_ties`); `tags`
    are rows of `member_tags`."""
    take(tx, Lock.MEMBERS)
    for table, items in ((members, [{**_NEW_MEMBER, **row} for row in rows]), (member_tags, tags)):
        for start in range(0, len(items), BULK_ROWS):
            batch = WriteBatch()
            batch.insert(table, items[start : start + BULK_ROWS])
            batch.flush(tx)


def add_to_counts(tx: Connection, tenant_id: str, deltas: Mapping[str, tuple[int, int]]) -> None:
    """Add `(direct, team)` to the counts of existing members, locking them in id order."""
    wanted = sorted(member_id for member_id, delta in deltas.items() if delta != (0, 0))
    for start in range(0, len(wanted), BULK_ROWS):
        chunk = wanted[start : start + BULK_ROWS]
        lock_members(tx, tenant_id, chunk)
        batch = WriteBatch()
        for member_id in chunk:
            direct, team = deltas[member_id]
            batch.update(
                members,
                {"tenant_id": tenant_id, "id": member_id},
                increments={"direct_count": direct, "team_count": team},
            )
        batch.flush(tx)


def mark_bound(
    tx: Connection, tenant_id: str, member_ids: Sequence[str], *, source: str, at: datetime
) -> None:
    """Record how and when existing members were bound (their chain columns follow from the
    tree: `refresh_chains`)."""
    take(tx, Lock.MEMBERS)
    for start in range(0, len(member_ids), BULK_ROWS):
        tx.execute(
            update(members)
            .where(
                members.c.tenant_id == tenant_id,
                members.c.id.in_(list(member_ids[start : start + BULK_ROWS])),
            )
            .values(binding_source=source, bound_at=at, updated_at=at)
        )


def set_purchase_facts(
    tx: Connection, tenant_id: str, facts: Mapping[str, PurchaseFacts], at: datetime
) -> None:
    """Write the purchase facts of buyers the caller holds (`lock_members`)."""
    take(tx, Lock.MEMBERS)
    ids = sorted(facts)
    for start in range(0, len(ids), BULK_ROWS):
        batch = WriteBatch()
        for member_id in ids[start : start + BULK_ROWS]:
            f = facts[member_id]
            batch.update(
                members,
                {"tenant_id": tenant_id, "id": member_id},
                values={
                    "paid_order_count": f.paid_order_count,
                    "lifetime_order_count": f.lifetime_order_count,
                    "paid_total_fen": f.paid_total_fen,
                    "max_order_fen": f.max_order_fen,
                    "first_paid_at": f.first_paid_at,
                    "last_paid_at": f.last_paid_at,
                    "updated_at": at,
                },
            )
        batch.flush(tx)
