"""Tenants, API keys and settings."""

from __future__ import annotations

from typing import Any

import pytest

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, DomainError, NotFound, Unauthorized
from shequn.events.service import list_events
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.snapshot import Snapshot
from shequn.tenancy.repo import load_settings, remember_settings, remembered_settings
from shequn.tenancy.rules import Role, TenantSettings, hash_api_key
from shequn.tenancy.service import (
    authenticate,
    create_api_key,
    create_tenant,
    get_settings,
    list_api_keys,
    revoke_api_key,
)
from tests import factories as f


def test_new_tenant_has_defaults_an_owner_key_and_an_event(
    ctx: Ctx, tenant: tuple[Ctx, str]
) -> None:
    _, raw_key = tenant
    settings = get_settings(ctx)
    assert {
        k: settings[k]
        for k in ("after_sales_days", "compliance_profile", "currency", "active_plan_id")
    } == {
        "after_sales_days": 7,
        "compliance_profile": "wechat",
        "currency": "CNY",
        "active_plan_id": None,
    }
    assert settings["binding_policy"] == {
        "mode": "first_touch",
        "window_days": 30,
        "trigger": "registration",
        "protection_days": 0,
    }
    who = authenticate(db=ctx.db, raw_key=raw_key)
    assert (who.tenant_id, who.role) == (ctx.tenant_id, Role.OWNER)
    with ctx.db.read() as tx:
        assert [e["type"] for e in list_events(tx, tenant_id=ctx.tenant_id)] == ["TenantCreated"]


def test_keys_are_stored_hashed_and_shown_once(ctx: Ctx) -> None:
    issued = create_api_key(ctx, name="运营", role="operator")
    assert issued["api_key"].startswith("sk_")
    listed = [k for k in list_api_keys(ctx) if k["id"] == issued["id"]]
    assert listed[0]["key_prefix"] == issued["api_key"][:10]
    assert "api_key" not in listed[0]
    from sqlalchemy import select

    from shequn.tenancy.tables import api_keys

    with ctx.db.read() as tx:
        stored = tx.execute(
            select(api_keys.c.key_hash).where(api_keys.c.id == issued["id"])
        ).scalar_one()
    assert stored == hash_api_key(issued["api_key"])
    assert issued["api_key"] not in stored


def test_revoked_keys_stop_working_and_the_last_owner_stays(
    ctx: Ctx, tenant: tuple[Ctx, str]
) -> None:
    issued = create_api_key(ctx, name="temp", role="readonly")
    assert authenticate(db=ctx.db, raw_key=issued["api_key"]).role is Role.READONLY
    revoke_api_key(ctx, key_id=issued["id"])
    with pytest.raises(Unauthorized):
        authenticate(db=ctx.db, raw_key=issued["api_key"])
    with pytest.raises(NotFound):
        revoke_api_key(ctx, key_id=issued["id"])
    owner = next(k for k in list_api_keys(ctx) if k["role"] == "owner")
    with pytest.raises(Conflict) as caught:
        revoke_api_key(ctx, key_id=owner["id"])
    assert caught.value.code == "last_owner_key"
    assert authenticate(db=ctx.db, raw_key=tenant[1]).role is Role.OWNER


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"after_sales_days": -1}, "setting_out_of_range"),
        ({"after_sales_days": 7.0}, "setting_invalid"),
        ({"after_sales_days": True}, "setting_invalid"),
        ({"compliance_profile": "anything"}, "setting_invalid"),
        ({"binding_policy": {"mode": "sometimes"}}, "setting_invalid"),
        ({"binding_policy": {"window_days": 0}}, "setting_out_of_range"),
        ({"binding_policy": {"colour": "red"}}, "setting_unknown"),
        ({"withdrawal_fee_bp": 20_000}, "setting_out_of_range"),
        ({"no_such_setting": 1}, "setting_unknown"),
        ({"stage_criteria": {"user_min_paid_orders": 0}}, "setting_out_of_range"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    ctx: Ctx, patch: dict[str, Any], code: str
) -> None:
    before = get_settings(ctx)
    with pytest.raises(DomainError) as caught:
        update_settings(ctx, patch=patch)
    assert caught.value.code == code
    assert get_settings(ctx) == before


def _version(ctx: Ctx) -> int:
    with ctx.db.read() as tx:
        return load_settings(tx, ctx.tenant_id).version


def test_every_change_of_the_settings_moves_their_version(ctx: Ctx) -> None:
    seen = [_version(ctx)]
    update_settings(ctx, patch={"after_sales_days": 3})
    seen.append(_version(ctx))
    update_settings(ctx, patch={})  # nothing to change
    seen.append(_version(ctx))
    f.two_level_plan(ctx)  # a plan activated
    seen.append(_version(ctx))
    create_tier(ctx, name="VIP", rank=1)
    seen.append(_version(ctx))
    with pytest.raises(DomainError):
        update_settings(ctx, patch={"after_sales_days": -1})
    seen.append(_version(ctx))
    assert seen == [0, 1, 1, 2, 3, 3]


def test_settings_patch_merges(ctx: Ctx) -> None:
    update_settings(ctx, patch={"binding_policy": {"mode": "last_touch", "protection_days": 15}})
    update_settings(
        ctx, patch={"stage_criteria": {"fan_min_paid_orders": 5}, "after_sales_days": 0}
    )
    settings = get_settings(ctx)
    assert settings["binding_policy"] == {
        "mode": "last_touch",
        "window_days": 30,
        "trigger": "registration",
        "protection_days": 15,
    }
    assert settings["stage_criteria"] == {
        "user_min_paid_orders": 2,
        "fan_min_paid_orders": 5,
        "friend_min_referred_buyers": 1,
    }
    assert settings["after_sales_days"] == 0


def test_tenants_never_see_each_other(db: Database, clock: ManualClock, ctx: Ctx) -> None:
    from shequn.flows.registration import create_member
    from shequn.members.service import get_member

    other_id, other_key = create_tenant(db=db, clock=clock, name="别家")
    other = Ctx(db=db, clock=clock, tenant_id=other_id, actor="test")
    theirs = create_member(other, name="别人")
    with pytest.raises(NotFound):
        get_member(ctx, member_id=theirs["id"])
    assert authenticate(db=db, raw_key=other_key).tenant_id == other_id
    with pytest.raises(DomainError) as caught:
        create_tenant(db=db, clock=clock, name="   ")
    assert caught.value.code == "tenant_name_invalid"


def test_settings_kept_keep_the_newest_version_and_forget_the_oldest_tenant() -> None:
    kept = Snapshot(size=2)
    remember_settings(kept, TenantSettings(tenant_id="tn_a", version=2))
    remember_settings(kept, TenantSettings(tenant_id="tn_a", version=1))  # a late read
    assert remembered_settings(kept, "tn_a") == TenantSettings(tenant_id="tn_a", version=2)
    remember_settings(kept, TenantSettings(tenant_id="tn_b", version=0))
    remember_settings(kept, TenantSettings(tenant_id="tn_c", version=5))
    assert remembered_settings(kept, "tn_a") is None
    assert [remembered_settings(kept, "tn_b"), remembered_settings(kept, "tn_c")] == [
        TenantSettings(tenant_id="tn_b", version=0),
        TenantSettings(tenant_id="tn_c", version=5),
    ]
