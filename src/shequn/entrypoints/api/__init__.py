"""The REST API's routes, one module per domain, built on `shequn.entrypoints.api.http`."""

from __future__ import annotations

from fastapi import APIRouter

from shequn.entrypoints.api import (
    catalog,
    distribution,
    events,
    members,
    orders,
    settlement,
    tenancy,
    tiers,
    wallet,
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
    settlement.router,
    tenancy.router,
)
