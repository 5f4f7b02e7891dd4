"""Commission plans (versioned, activated only when compliant) and the commission lifecycle:
accrue on payment, cancel or reverse on refund, release at settlement."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from shequn.batch import WriteBatch
from shequn.context import Ctx
from shequn.distribution.rules import (
    Award,
    ChainMember,
    LevelRule,
    PlanMode,
    PlanSpec,
    Release,
    SaleLine,
    ScopeKind,
    compute_awards,
    nominal_total_bp,
    scaled_amount,
    validate_plan,
)
from shequn.distribution.tables import (
    COMMISSION_STATUSES,
    commission_lines,
    commission_plans,
    commission_rules,
)
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, member_account, split_reversal
from shequn.ledger.service import JournalEntry, lock_balances, post_transaction
from shequn.members.tables import members
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.service import load_settings
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.rules import TierSpec
from shequn.tiers.service import load_tiers


def _parse_mode(raw: str) -> PlanMode:
    try:
        return PlanMode(raw)
    except ValueError:
        raise InvalidInput("plan_mode_invalid", mode=raw) from None


def build_plan_spec(
    *,
    mode: str,
    levels: Sequence[Mapping[str, Any]] = (),
    tier_rates: Sequence[Mapping[str, Any]] = (),
    depth: int | None = None,
    peer_bonus_bp: int = 0,
    signup_reward_fen: int = 0,
    qualification_sku: str | None = None,
    team_volume_bonus_bp: int = 0,
    release: str = "on_close",
) -> PlanSpec:
    """Turn API input into a validated plan (raises InvalidInput with a stable code)."""
    parsed_mode = _parse_mode(mode)
    rules: list[LevelRule] = []
    for item in levels:
        scope = item.get("scope") or {}
        try:
            scope_kind = ScopeKind(scope.get("kind", "all"))
        except ValueError:
            raise InvalidInput("rule_scope_invalid") from None
        tier_ids = item.get("tiers")
        rules.append(
            LevelRule(
                level=item["level"],
                rate_bp=item.get("rate_bp", 0),
                fixed_fen=item.get("fixed_fen", 0),
                scope_kind=scope_kind,
                scope_value=scope.get("value"),
                tier_ids=frozenset(tier_ids) if tier_ids is not None else None,
            )
        )
    rates: dict[str, int] = {}
    for item in tier_rates:
        if item["tier_id"] in rates:
            raise InvalidInput("tier_rate_duplicate", tier_id=item["tier_id"])
        rates[item["tier_id"]] = item["rate_bp"]
    if depth is None:
        depth = max((r.level for r in rules), default=2) if parsed_mode is PlanMode.LEVELS else 2
    try:
        parsed_release = Release(release)
    except ValueError:
        raise InvalidInput("plan_release_invalid", release=release) from None
    return validate_plan(
        PlanSpec(
            mode=parsed_mode,
            depth=depth,
            rules=tuple(rules),
            tier_rates=rates,
            peer_bonus_bp=peer_bonus_bp,
            signup_reward_fen=signup_reward_fen,
            qualification_sku=qualification_sku,
            team_volume_bonus_bp=team_volume_bonus_bp,
            release=parsed_release,
        )
    )


_plan_cache: dict[tuple[str, str], PlanSpec] = {}
_plan_cache_lock = threading.Lock()


def load_plan(tx: Connection, tenant_id: str, plan_id: str) -> PlanSpec:
    """Plans never change once written, so they are cached per process."""
    key = (tenant_id, plan_id)
    with _plan_cache_lock:
        cached = _plan_cache.get(key)
    if cached is not None:
        return cached
    row = tx.execute(
        select(commission_plans).where(
            commission_plans.c.tenant_id == tenant_id, commission_plans.c.id == plan_id
        )
    ).first()
    if row is None:
        raise NotFound("plan_not_found", id=plan_id)
    rule_rows = tx.execute(
        select(commission_rules)
        .where(commission_rules.c.tenant_id == tenant_id, commission_rules.c.plan_id == plan_id)
        .order_by(commission_rules.c.level, commission_rules.c.id)
    ).all()
    spec = PlanSpec(
        mode=PlanMode(row.mode),
        depth=row.depth,
        rules=tuple(
            LevelRule(
                level=r.level,
                rate_bp=r.rate_bp,
                fixed_fen=r.fixed_fen,
                scope_kind=ScopeKind(r.scope_kind),
                scope_value=r.scope_value,
                tier_ids=frozenset(r.tier_ids) if r.tier_ids is not None else None,
            )
            for r in rule_rows
        ),
        tier_rates=dict(row.tier_rates),
        peer_bonus_bp=row.peer_bonus_bp,
        signup_reward_fen=row.signup_reward_fen,
        qualification_sku=row.qualification_sku,
        team_volume_bonus_bp=row.team_volume_bonus_bp,
        release=Release(row.release),
    )
    with _plan_cache_lock:
        if len(_plan_cache) > 5_000:
            _plan_cache.clear()
        _plan_cache[key] = spec
    return spec


def _plan_view(row: Row[Any], spec: PlanSpec, findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "name": row.name,
        "mode": spec.mode.value,
        "depth": spec.depth,
        "status": row.status,
        "levels": [
            {
                "level": r.level,
                "rate_bp": r.rate_bp,
                "fixed_fen": r.fixed_fen,
                "scope": {"kind": r.scope_kind.value, "value": r.scope_value},
                "tiers": sorted(r.tier_ids) if r.tier_ids is not None else None,
            }
            for r in spec.rules
        ],
        "tier_rates": [{"tier_id": t, "rate_bp": v} for t, v in sorted(spec.tier_rates.items())],
        "peer_bonus_bp": spec.peer_bonus_bp,
        "signup_reward_fen": spec.signup_reward_fen,
        "qualification_sku": spec.qualification_sku,
        "team_volume_bonus_bp": spec.team_volume_bonus_bp,
        "release": spec.release.value,
        "nominal_total_bp": nominal_total_bp(spec),
        "created_at": row.created_at,
        "activated_at": row.activated_at,
        "retired_at": row.retired_at,
        "findings": findings,
    }


def _check_references(tx: Connection, tenant_id: str, spec: PlanSpec) -> None:
    from shequn.catalog.tables import products

    tier_ids = set(spec.tier_rates)
    for rule in spec.rules:
        tier_ids |= set(rule.tier_ids or ())
    known = {t.id for t in load_tiers(tx, tenant_id)}
    missing = sorted(tier_ids - known)
    if missing:
        raise NotFound("tier_not_found", id=missing[0])
    skus = {r.scope_value for r in spec.rules if r.scope_kind is ScopeKind.PRODUCT}
    if spec.qualification_sku:
        skus.add(spec.qualification_sku)
    if skus:
        found = set(
            tx.execute(
                select(products.c.sku).where(
                    products.c.tenant_id == tenant_id,
                    products.c.sku.in_(sorted(s for s in skus if s)),
                )
            ).scalars()
        )
        absent = sorted(s for s in skus if s and s not in found)
        if absent:
            raise NotFound("product_not_found", sku=absent[0])
    for rule in spec.rules:
        if rule.scope_kind is ScopeKind.LADDER_ROLE and rule.scope_value not in (
            "bait",
            "core",
            "partner",
        ):
            raise InvalidInput("ladder_role_invalid", ladder_role=rule.scope_value)


def findings_for_spec(tx: Connection, *, settings: TenantSettings, spec: PlanSpec) -> list[Any]:
    from shequn.compliance.service import check_spec

    return check_spec(tx, settings=settings, spec=spec)


def create_plan(ctx: Ctx, *, spec: PlanSpec, name: str | None = None) -> dict[str, Any]:
    """Store a new draft version and report its compliance findings."""
    now = ctx.clock.now()
    plan_id = new_id("plan")
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id, for_update=True)  # serialises versions
        _check_references(tx, ctx.tenant_id, spec)
        version = (
            tx.execute(
                select(func.coalesce(func.max(commission_plans.c.version), 0)).where(
                    commission_plans.c.tenant_id == ctx.tenant_id
                )
            ).scalar_one()
            + 1
        )
        tx.execute(
            insert(commission_plans).values(
                tenant_id=ctx.tenant_id,
                id=plan_id,
                version=version,
                name=(name or "").strip()[:80] or f"v{version}",
                mode=spec.mode.value,
                depth=spec.depth,
                peer_bonus_bp=spec.peer_bonus_bp,
                signup_reward_fen=spec.signup_reward_fen,
                qualification_sku=spec.qualification_sku,
                team_volume_bonus_bp=spec.team_volume_bonus_bp,
                release=spec.release.value,
                tier_rates=dict(spec.tier_rates),
                status="draft",
                created_by=ctx.actor,
                created_at=now,
            )
        )
        if spec.rules:
            tx.execute(
                insert(commission_rules),
                [
                    {
                        "tenant_id": ctx.tenant_id,
                        "id": new_id("rule"),
                        "plan_id": plan_id,
                        "level": r.level,
                        "rate_bp": r.rate_bp,
                        "fixed_fen": r.fixed_fen,
                        "scope_kind": r.scope_kind.value,
                        "scope_value": r.scope_value,
                        "tier_ids": sorted(r.tier_ids) if r.tier_ids is not None else None,
                    }
                    for r in spec.rules
                ],
            )
        findings = [f.as_dict() for f in findings_for_spec(tx, settings=settings, spec=spec)]
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "CommissionPlanCreated",
                    "plan",
                    plan_id,
                    {
                        "version": version,
                        "blocking": sum(f["severity"] == "block" for f in findings),
                    },
                )
            ],
        )
        row = _plan_row(tx, ctx.tenant_id, plan_id)
    return _plan_view(row, spec, findings)


def _plan_row(
    tx: Connection, tenant_id: str, plan_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(commission_plans).where(
        commission_plans.c.tenant_id == tenant_id, commission_plans.c.id == plan_id
    )
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("plan_not_found", id=plan_id)
    return row


def get_plan(ctx: Ctx, *, plan_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        row = _plan_row(tx, ctx.tenant_id, plan_id)
        spec = load_plan(tx, ctx.tenant_id, plan_id)
        findings = [f.as_dict() for f in findings_for_spec(tx, settings=settings, spec=spec)]
    return _plan_view(row, spec, findings)


def list_plans(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(commission_plans)
            .where(commission_plans.c.tenant_id == ctx.tenant_id)
            .order_by(commission_plans.c.version)
        ).all()
        return [_plan_view(r, load_plan(tx, ctx.tenant_id, r.id), []) for r in rows]


def activate_plan(ctx: Ctx, *, plan_id: str) -> dict[str, Any]:
    """Make the plan the one active plan, unless a compliance finding blocks it."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id, for_update=True)
        row = _plan_row(tx, ctx.tenant_id, plan_id, for_update=True)
        spec = load_plan(tx, ctx.tenant_id, plan_id)
        findings = findings_for_spec(tx, settings=settings, spec=spec)
        if any(f.severity == "block" for f in findings):
            raise Conflict("plan_blocked", findings=[f.as_dict() for f in findings])
        if row.status != "active":
            if settings.active_plan_id is not None:
                tx.execute(
                    update(commission_plans)
                    .where(
                        commission_plans.c.tenant_id == ctx.tenant_id,
                        commission_plans.c.id == settings.active_plan_id,
                    )
                    .values(status="retired", retired_at=now)
                )
            tx.execute(
                update(commission_plans)
                .where(
                    commission_plans.c.tenant_id == ctx.tenant_id, commission_plans.c.id == plan_id
                )
                .values(status="active", activated_at=now, retired_at=None)
            )
            tx.execute(
                update(tenant_settings)
                .where(tenant_settings.c.tenant_id == ctx.tenant_id)
                .values(
                    active_plan_id=plan_id,
                    version=tenant_settings.c.version + 1,
                    updated_at=now,
                )
            )
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event(
                        "CommissionPlanActivated",
                        "plan",
                        plan_id,
                        {"version": row.version, "replaced": settings.active_plan_id},
                    )
                ],
            )
        row = _plan_row(tx, ctx.tenant_id, plan_id)
    return _plan_view(row, spec, [f.as_dict() for f in findings])


# --- lifecycle -------------------------------------------------------------------------------


def _needs_tiers(spec: PlanSpec) -> bool:
    return (
        spec.mode is PlanMode.DIFFERENTIAL
        or spec.peer_bonus_bp > 0
        or any(r.tier_ids is not None for r in spec.rules)
    )


def accrue_commissions(
    tx: Connection,
    batch: WriteBatch,
    *,
    settings: TenantSettings,
    tier_list: Sequence[TierSpec],
    order_id: str,
    buyer: Any,
    lines: Sequence[SaleLine],
    at: datetime,
) -> tuple[list[Award], JournalEntry | None]:
    """Compute the active plan's commission for a paid order, add its lines to the batch, and
    return the journal entry that freezes it in the uplines' pending wallets (the caller posts
    it)."""
    from shequn.compliance.rules import runtime_cap_bp

    if settings.active_plan_id is None:
        return [], None
    upline_ids = [a for a in (buyer.referrer_id, buyer.ancestor_2, buyer.ancestor_3) if a]
    if not upline_ids:
        return [], None
    spec = load_plan(tx, settings.tenant_id, settings.active_plan_id)
    upline_ids = upline_ids[: spec.depth]
    tier_of: dict[str, str | None] = {}
    if _needs_tiers(spec):
        tier_of = dict(
            tx.execute(
                select(members.c.id, members.c.tier_id).where(
                    members.c.tenant_id == settings.tenant_id, members.c.id.in_(upline_ids)
                )
            ).all()
        )
    ranks = {t.id: t.rank for t in tier_list}

    def as_chain(member_id: str, tier_id: str | None) -> ChainMember:
        return ChainMember(member_id, tier_id, ranks.get(tier_id) if tier_id else None)

    awards = compute_awards(
        spec,
        buyer=as_chain(buyer.id, buyer.tier_id),
        uplines=[as_chain(m, tier_of.get(m)) for m in upline_ids],
        lines=lines,
        cap_bp=runtime_cap_bp(settings.compliance_profile, settings.custom_commission_cap_bp),
    )
    if not awards:
        return [], None
    batch.insert(
        commission_lines,
        [
            {
                "tenant_id": settings.tenant_id,
                "id": new_id("com"),
                "order_id": order_id,
                "order_line_id": a.line_id,
                "plan_id": settings.active_plan_id,
                "beneficiary_id": a.beneficiary_id,
                "level": a.level,
                "kind": a.kind.value,
                "rate_bp": a.rate_bp,
                "base_fen": a.base_fen,
                "amount_fen": a.amount_fen,
                "cancelled_fen": 0,
                "reversed_fen": 0,
                "withdrawn_fen": 0,
                "status": "pending",
                "created_at": at,
            }
            for a in awards
        ],
    )
    per_member: dict[str, int] = defaultdict(int)
    for a in awards:
        per_member[a.beneficiary_id] += a.amount_fen
    total = sum(per_member.values())
    entry = JournalEntry(
        kind="commission_accrued",
        ref_type="order",
        ref_id=order_id,
        items=[Posting(brand_account(Purpose.BRAND_CLEARING), -total, settings.currency)]
        + [
            Posting(member_account(m, Purpose.WALLET_PENDING), amount, settings.currency)
            for m, amount in sorted(per_member.items())
        ],
    )
    return awards, entry


_shrink_line = (
    update(commission_lines)
    .where(
        commission_lines.c.tenant_id == bindparam("t_id"),
        commission_lines.c.id == bindparam("c_id"),
    )
    .values(
        cancelled_fen=commission_lines.c.cancelled_fen + bindparam("cancel"),
        reversed_fen=commission_lines.c.reversed_fen + bindparam("reverse"),
        status=bindparam("new_status"),
    )
)


def adjust_for_refund(
    tx: Connection,
    *,
    settings: TenantSettings,
    order_id: str,
    remaining_base: Mapping[str, int],
    refund_id: str,
    at: datetime,
) -> dict[str, int]:
    """Shrink the order's commission lines to what their remaining base earns. Pending lines
    are cancelled; released lines are reversed, taking what is available and recording the
    rest as debt. Returns {"cancelled_fen": …, "reversed_fen": …}."""
    rows = tx.execute(
        select(commission_lines)
        .where(
            commission_lines.c.tenant_id == settings.tenant_id,
            commission_lines.c.order_id == order_id,
            commission_lines.c.status.in_(("pending", "available", "withdrawn")),
        )
        .order_by(commission_lines.c.id)
    ).all()
    updates = []
    cancel_by_member: dict[str, int] = defaultdict(int)
    reverse_by_member: dict[str, int] = defaultdict(int)
    for row in rows:
        net = row.amount_fen - row.cancelled_fen - row.reversed_fen
        target = scaled_amount(
            row.amount_fen,
            base_fen=row.base_fen,
            remaining_base_fen=remaining_base.get(row.order_line_id, row.base_fen),
        )
        delta = net - target
        if delta <= 0:
            continue
        if row.status == "pending":
            updates.append(
                {
                    "t_id": settings.tenant_id,
                    "c_id": row.id,
                    "cancel": delta,
                    "reverse": 0,
                    "new_status": "cancelled" if target == 0 else "pending",
                }
            )
            cancel_by_member[row.beneficiary_id] += delta
        else:
            updates.append(
                {
                    "t_id": settings.tenant_id,
                    "c_id": row.id,
                    "cancel": 0,
                    "reverse": delta,
                    "new_status": "reversed" if target == 0 else row.status,
                }
            )
            reverse_by_member[row.beneficiary_id] += delta
    if not updates:
        return {"cancelled_fen": 0, "reversed_fen": 0}
    tx.execute(_shrink_line, updates)
    currency = settings.currency
    items: list[Posting] = []
    for member_id, amount in sorted(cancel_by_member.items()):
        items.append(Posting(member_account(member_id, Purpose.WALLET_PENDING), -amount, currency))
    if reverse_by_member:
        balances = lock_balances(
            tx,
            tenant_id=settings.tenant_id,
            account_ids=[member_account(m, Purpose.WALLET_AVAILABLE) for m in reverse_by_member],
        )
        for member_id, amount in sorted(reverse_by_member.items()):
            available_id = member_account(member_id, Purpose.WALLET_AVAILABLE)
            from_available, to_debt = split_reversal(amount, balances.get(available_id, 0))
            items.append(Posting(available_id, -from_available, currency))
            items.append(Posting(member_account(member_id, Purpose.DEBT), -to_debt, currency))
    cancelled = sum(cancel_by_member.values())
    reversed_total = sum(reverse_by_member.values())
    items.append(
        Posting(brand_account(Purpose.BRAND_CLEARING), cancelled + reversed_total, currency)
    )
    post_transaction(
        tx,
        tenant_id=settings.tenant_id,
        kind="commission_adjusted",
        ref_type="refund",
        ref_id=refund_id,
        at=at,
        items=items,
    )
    return {"cancelled_fen": cancelled, "reversed_fen": reversed_total}


def line_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "order_line_id": row.order_line_id,
        "plan_id": row.plan_id,
        "level": row.level,
        "kind": row.kind,
        "rate_bp": row.rate_bp,
        "base_fen": row.base_fen,
        "amount_fen": row.amount_fen,
        "cancelled_fen": row.cancelled_fen,
        "reversed_fen": row.reversed_fen,
        "withdrawn_fen": row.withdrawn_fen,
        "net_fen": row.amount_fen - row.cancelled_fen - row.reversed_fen,
        "status": row.status,
        "created_at": row.created_at,
        "released_at": row.released_at,
    }


def member_commissions(
    ctx: Ctx,
    *,
    member_id: str,
    status: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    from shequn.members.service import require_member

    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    if status is not None and status not in COMMISSION_STATUSES:
        raise InvalidInput("commission_status_invalid", status=status)
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        query = select(commission_lines).where(
            commission_lines.c.tenant_id == ctx.tenant_id,
            commission_lines.c.beneficiary_id == member_id,
        )
        if status is not None:
            query = query.where(commission_lines.c.status == status)
        if after is not None:
            query = query.where(commission_lines.c.id > after)
        rows = tx.execute(query.order_by(commission_lines.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [line_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def order_commissions(tx: Connection, *, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(commission_lines)
        .where(commission_lines.c.tenant_id == tenant_id, commission_lines.c.order_id == order_id)
        .order_by(commission_lines.c.level, commission_lines.c.id)
    ).all()
    return [{**line_view(r), "beneficiary_id": r.beneficiary_id} for r in rows]
