"""The REST API's routes, one module per domain, built on `shequn.entrypoints.api.http`."""

from __future__ import annotations

from fastapi import APIRouter

from shequn.entrypoints.api import (
    catalog,
    community,
    community_activities,
    community_cadence,
    community_complaints,
    community_gatherings,
    community_health,
    community_leaders,
    community_path,
    community_programs,
    community_rituals,
    community_staff,
    distribution,
    events,
    growth,
    growth_accounts,
    members,
    orders,
    settlement,
    tenancy,
    tiers,
    transfer,
    wallet,
    webhooks,
)

# Busiest first: every request is matched against the routes in this order.
ROUTERS: tuple[APIRouter, ...] = (
    orders.router,
    members.router,
    wallet.router,
    catalog.router,
    events.router,
    distribution.router,
    tiers.router,
    tiers.plans_router,
    tiers.repurchase_router,
    settlement.router,
    tenancy.router,
    webhooks.router,
    transfer.router,
    community.router,
    community_staff.router,
    community_rituals.router,
    community_rituals.public,
    community_activities.router,
    community_gatherings.router,
    community_programs.router,
    community_path.router,
    community_leaders.router,
    community_cadence.router,
    community_health.router,
    community_complaints.router,
    growth.router,
    growth_accounts.router,
    growth.public,
)
