"""Compliance checks against the tenant's data, and the report over live data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import BigInteger, Connection, String, and_, column, exists, func, select, table
from sqlalchemy.orm import aliased

from shequn.catalog.repo import active_products
from shequn.compliance.rules import (
    Finding,
    LiveFigures,
    ProductFacts,
    check_plan,
    live_findings,
    report_rows,
    runtime_cap_bp,
    stock_entry_findings,
)
from shequn.context import Ctx
from shequn.distribution.repo import load_plan
from shequn.distribution.rules import PlanSpec
from shequn.distribution.tables import commission_lines
from shequn.ledger.tables import journal_transactions, postings
from shequn.members.tables import members
from shequn.referrals.tables import referral_paths
from shequn.snapshot import Snapshot
from shequn.tenancy.repo import load_settings
from shequn.tenancy.rules import TenantSettings
from shequn.tiers.repo import load_tiers


def check_spec(tx: Connection, *, settings: TenantSettings, spec: PlanSpec) -> list[Finding]:
    """The plan's findings under the tenant's profile, with its tiers and catalog."""
    return check_plan(
        spec,
        profile=settings.compliance_profile,
        custom_cap_bp=settings.custom_commission_cap_bp,
        tiers=load_tiers(tx, settings.tenant_id),
        products=[ProductFacts(*p) for p in active_products(tx, settings.tenant_id)],
    )


def findings_for_plan(
    tx: Connection, *, settings: TenantSettings, plan_id: str, snapshot: Snapshot
) -> list[Finding]:
    spec = load_plan(tx, settings.tenant_id, plan_id, snapshot)
    return check_spec(tx, settings=settings, spec=spec)


def live_figures(tx: Connection, tenant_id: str) -> LiveFigures:
    earning = select(commission_lines.c.level).where(
        commission_lines.c.tenant_id == tenant_id,
        commission_lines.c.status.in_(("pending", "available", "withdrawn")),
    )
    deepest = tx.execute(
        select(func.coalesce(func.max(earning.subquery().c.level), 0))
    ).scalar_one()
    p = referral_paths
    two_up = aliased(p)
    # A member is in a chain of three or more levels when it sits at either end of a depth-2
    # path, or in the middle of one (it has both a referrer and a referred member).
    in_long_chain = (
        select(func.count())
        .select_from(members)
        .where(
            members.c.tenant_id == tenant_id,
            (members.c.ancestor_2.is_not(None))
            | exists().where(
                two_up.c.tenant_id == tenant_id,
                two_up.c.ancestor_id == members.c.id,
                two_up.c.depth == 2,
            )
            | and_(members.c.referrer_id.is_not(None), members.c.direct_count > 0),
        )
    )
    chain_members = tx.execute(in_long_chain).scalar_one()
    # A path of depth d joins d + 1 members: a chain of d + 1 levels.
    deepest_tree = tx.execute(
        select(func.coalesce(func.max(p.c.depth) + 1, 0)).where(p.c.tenant_id == tenant_id)
    ).scalar_one()
    income = tx.execute(
        select(journal_transactions.c.kind, func.coalesce(func.sum(postings.c.amount), 0))
        .select_from(
            postings.join(
                journal_transactions,
                and_(
                    journal_transactions.c.tenant_id == postings.c.tenant_id,
                    journal_transactions.c.id == postings.c.transaction_id,
                ),
            )
        )
        .where(
            postings.c.tenant_id == tenant_id,
            postings.c.account_id.like("mem\\_%.pd", escape="\\"),
            postings.c.amount > 0,
        )
        .group_by(journal_transactions.c.kind)
    ).all()
    total_income = sum(int(v) for _, v in income)
    recruitment = sum(int(v) for k, v in income if k == "recruitment_reward")
    return LiveFigures(
        deepest_earning_level=int(deepest),
        deepest_referral_levels=int(deepest_tree),
        members_in_chains_of_3_plus=int(chain_members),
        member_income_fen=total_income,
        recruitment_income_fen=recruitment,
        recruitment_income_share_bp=recruitment * 10_000 // total_income if total_income else 0,
    )


# The growth domain's settings (above this one), by name: the stock an agent must buy first.
growth_settings = table(
    "growth_settings", column("tenant_id", String), column("min_first_stock_order_fen", BigInteger)
)


def stock_entry_fen(tx: Connection, tenant_id: str) -> int:
    """The minimum first stock order the tenant asks of a new agent (0: none)."""
    found = tx.execute(
        select(growth_settings.c.min_first_stock_order_fen).where(
            growth_settings.c.tenant_id == tenant_id
        )
    ).scalar()
    return int(found or 0)


def compliance_report(ctx: Ctx) -> dict[str, Any]:
    """The active plan's findings under the tenant's profile, plus what the live data shows:
    its figures, and the report's rows (each figure with its state and citation), findings
    and rows as `Finding` and `ReportRow`, rendered where they are shown."""
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        findings: list[Finding] = []
        if settings.active_plan_id is not None:
            findings = findings_for_plan(
                tx, settings=settings, plan_id=settings.active_plan_id, snapshot=ctx.snapshot
            )
        live = live_figures(tx, ctx.tenant_id)
        stock_fen = stock_entry_fen(tx, ctx.tenant_id)
        findings += stock_entry_findings(
            min_first_stock_order_fen=stock_fen, profile=settings.compliance_profile
        )
    return {
        "profile": settings.compliance_profile,
        "active_plan_id": settings.active_plan_id,
        "cap_bp": runtime_cap_bp(settings.compliance_profile, settings.custom_commission_cap_bp),
        "findings": findings + live_findings(live, settings.compliance_profile),
        "live": asdict(live),
        "live_rows": report_rows(live, settings.compliance_profile, stock_entry_fen=stock_fen),
    }
