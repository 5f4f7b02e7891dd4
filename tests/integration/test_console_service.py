"""Console users, logins with their lockout, sessions, and the portal's password and one-time
code logins, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from shequn.clock import ManualClock
from shequn.console.delivery import CodeMessage, set_code_delivery
from shequn.console.rules import ConsoleRole
from shequn.console.service import (
    console_login,
    create_console_user,
    end_session,
    list_console_users,
    portal_code_login,
    portal_password_login,
    resolve_console_session,
    resolve_portal_session,
    send_portal_code,
    set_portal_password,
    update_console_user,
)
from shequn.context import Ctx
from shequn.errors import Conflict, DomainError, Forbidden, InvalidInput, Unauthorized
from tests import factories as f
from tests.e2e.conftest import contents

PASSWORD = "correct-horse-battery"


def _login(ctx: Ctx, login: str, password: str = PASSWORD) -> str:
    return console_login(db=ctx.db, clock=ctx.clock, login=login, password=password).token


def _code(exc: pytest.ExceptionInfo[DomainError]) -> tuple[str, dict[str, object]]:
    return exc.value.code, exc.value.params


def test_a_user_logs_in_and_out(ctx: Ctx) -> None:
    login = f"owner-{ctx.tenant_id[-8:]}@brand.test"
    user = create_console_user(ctx, login=login.upper(), password=PASSWORD, role="owner")
    assert (user["login"], user["role"], user["display_name"]) == (login, "owner", login)
    token = _login(ctx, login)
    session = resolve_console_session(db=ctx.db, clock=ctx.clock, token=token)
    assert session is not None
    assert (session.tenant_id, session.user_id, session.role) == (
        ctx.tenant_id,
        user["id"],
        ConsoleRole.OWNER,
    )
    assert session.tenant_name == "测试品牌 Test brand"
    end_session(db=ctx.db, clock=ctx.clock, token=token)
    assert resolve_console_session(db=ctx.db, clock=ctx.clock, token=token) is None
    assert resolve_console_session(db=ctx.db, clock=ctx.clock, token="not-a-token") is None


def test_five_failures_lock_the_login_for_fifteen_minutes(ctx: Ctx, clock: ManualClock) -> None:
    login = f"ops-{ctx.tenant_id[-8:]}@brand.test"
    create_console_user(ctx, login=login, password=PASSWORD, role="operator")
    for left in (4, 3, 2, 1):
        with pytest.raises(Unauthorized) as refused:
            _login(ctx, login, "wrong-password")
        assert _code(refused) == ("login_failed_attempts", {"left": left})
    with pytest.raises(Forbidden) as locked:
        _login(ctx, login, "wrong-password")
    assert _code(locked) == ("login_locked", {"minutes": 15, "failures": 5})
    with pytest.raises(Forbidden):
        _login(ctx, login)  # the right password does not open a locked login
    clock.advance(minutes=15)
    # Once the lock has run out, one more failure does not lock again at once.
    with pytest.raises(Unauthorized) as again:
        _login(ctx, login, "wrong-password")
    assert _code(again) == ("login_failed_attempts", {"left": 4})
    assert _login(ctx, login)


def test_an_owner_unlocks_disables_and_resets(ctx: Ctx) -> None:
    owner = f"o-{ctx.tenant_id[-8:]}@brand.test"
    ops = f"p-{ctx.tenant_id[-8:]}@brand.test"
    create_console_user(ctx, login=owner, password=PASSWORD, role="owner")
    user = create_console_user(ctx, login=ops, password=PASSWORD, role="operator")
    for _ in range(5):
        with pytest.raises((Unauthorized, Forbidden)):
            _login(ctx, ops, "wrong-password")
    update_console_user(ctx, user_id=user["id"], unlock=True)
    token = _login(ctx, ops)
    update_console_user(ctx, user_id=user["id"], password="another-long-password")
    assert resolve_console_session(db=ctx.db, clock=ctx.clock, token=token) is None
    token = _login(ctx, ops, "another-long-password")
    update_console_user(ctx, user_id=user["id"], disabled=True)
    assert resolve_console_session(db=ctx.db, clock=ctx.clock, token=token) is None
    with pytest.raises(Unauthorized) as refused:
        _login(ctx, ops, "another-long-password")
    assert refused.value.code == "login_failed"
    assert [u["login"] for u in list_console_users(ctx)] == sorted([owner, ops])


def test_bad_input_changes_nothing(ctx: Ctx) -> None:
    login = f"x-{ctx.tenant_id[-8:]}@brand.test"
    owner = create_console_user(ctx, login=login, password=PASSWORD, role="owner")
    before = contents(ctx.db, ctx.tenant_id)
    cases = [
        ({"login": "a", "password": PASSWORD, "role": "owner"}, "console_login_invalid"),
        ({"login": "new@b.test", "password": "short", "role": "owner"}, "password_length"),
        ({"login": "new@b.test", "password": PASSWORD, "role": "root"}, "console_role_invalid"),
        ({"login": login, "password": PASSWORD, "role": "operator"}, "console_login_taken"),
    ]
    for kwargs, code in cases:
        with pytest.raises((InvalidInput, Conflict)) as refused:
            create_console_user(ctx, **kwargs)
        assert refused.value.code == code
    with pytest.raises(Conflict) as last:
        update_console_user(ctx, user_id=owner["id"], role="operator")
    assert last.value.code == "last_console_owner"
    assert contents(ctx.db, ctx.tenant_id) == before


def test_a_member_logs_in_to_the_portal_with_a_password(ctx: Ctx) -> None:
    phone = f.phone()
    member = f.member(ctx, "代理", phone=phone)
    with pytest.raises(Unauthorized):
        portal_password_login(
            db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, password=PASSWORD
        )
    set_portal_password(ctx, member_id=member, password=PASSWORD)
    session = portal_password_login(
        db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone[3:], password=PASSWORD
    )
    found = resolve_portal_session(db=ctx.db, clock=ctx.clock, token=session.token)
    assert found is not None
    assert (found.member_id, found.member_name, found.has_password) == (member, "代理", True)
    # A portal token opens no console, and a console token no portal.
    assert resolve_console_session(db=ctx.db, clock=ctx.clock, token=session.token) is None


def test_a_one_time_code_works_once_for_ten_minutes(ctx: Ctx, clock: ManualClock) -> None:
    phone = f.phone()
    member = f.member(ctx, "会员", phone=phone)
    sent: list[CodeMessage] = []
    before = set_code_delivery(sent.append)
    try:
        send_portal_code(db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone)
        with pytest.raises(Conflict) as early:
            send_portal_code(db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone)
        assert _code(early) == ("login_code_wait", {"seconds": 60})
        send_portal_code(
            db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone="+8613000000000"
        )
        assert [(m.member_id, m.minutes) for m in sent] == [(member, 10)]
        code = sent[0].code
        wrong = "000000" if code != "000000" else "111111"
        with pytest.raises(Unauthorized):
            portal_code_login(
                db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, code=wrong
            )
        session = portal_code_login(
            db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, code=code
        )
        assert resolve_portal_session(db=ctx.db, clock=ctx.clock, token=session.token)
        with pytest.raises(Unauthorized):  # used once
            portal_code_login(
                db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, code=code
            )
        clock.advance(minutes=1)
        send_portal_code(db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone)
        clock.advance(minutes=10)
        with pytest.raises(Unauthorized):  # expired
            portal_code_login(
                db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, code=sent[1].code
            )
    finally:
        set_code_delivery(before)


def test_a_portal_session_ends_after_thirty_idle_days(ctx: Ctx, clock: ManualClock) -> None:
    phone = f.phone()
    member = f.member(ctx, "会员", phone=phone)
    set_portal_password(ctx, member_id=member, password=PASSWORD)
    token = portal_password_login(
        db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone, password=PASSWORD
    ).token
    clock.advance(days=29)
    assert resolve_portal_session(db=ctx.db, clock=ctx.clock, token=token) is not None
    clock.advance(days=29, hours=23)
    assert resolve_portal_session(db=ctx.db, clock=ctx.clock, token=token) is not None
    clock.advance(days=30, seconds=1)
    assert resolve_portal_session(db=ctx.db, clock=ctx.clock, token=token) is None


def test_a_code_goes_out_through_the_outbox_to_the_members_staff_account(ctx: Ctx) -> None:
    from shequn.community.outbox.service import outbox_page
    from shequn.community.staff.service import assign_member, create_account

    account = create_account(
        ctx, name="小美", operator="staff@brand.test", working_hours="00:00-24:00"
    )
    phone = f.phone()
    member = f.member(ctx, "会员", phone=phone)
    assign_member(ctx, member_id=member)
    sent: list[CodeMessage] = []
    before = set_code_delivery(sent.append)
    try:
        send_portal_code(db=ctx.db, clock=ctx.clock, tenant_id=ctx.tenant_id, phone=phone)
    finally:
        set_code_delivery(before)
    queued = [
        m
        for m in outbox_page(ctx, adapter="operator_task")["items"]
        if m["kind"] == "portal_login_code"
    ]
    assert [(m["member_id"], m["staff_account_id"]) for m in queued] == [(member, account["id"])]
    assert sent[0].code in queued[0]["body"]


def test_a_staff_account_operator_sees_only_the_members_of_their_accounts(ctx: Ctx) -> None:
    from shequn.community.staff.service import assign_member, create_account
    from shequn.errors import NotFound
    from shequn.insights.console_members import member_360, search_members

    create_account(ctx, name="小美", operator="Staff@Brand.test", working_hours="00:00-24:00")
    mine = f.member(ctx, "我的")
    assign_member(ctx, member_id=mine)
    theirs = f.member(ctx, "别人的")
    seen = search_members(ctx, viewer="staff@brand.test")["items"]
    assert [m["id"] for m in seen] == [mine]
    assert search_members(ctx, viewer="nobody@brand.test")["items"] == []
    assert {m["id"] for m in search_members(ctx)["items"]} >= {mine, theirs}
    assert member_360(ctx, member_id=mine, viewer="staff@brand.test")["member"]["id"] == mine
    with pytest.raises(NotFound):
        member_360(ctx, member_id=theirs, viewer="staff@brand.test")
