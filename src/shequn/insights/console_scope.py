"""Which members a console user may see. Everyone sees every member of the tenant, except a
staff-account operator (个人号运营), who sees the members assigned to the staff accounts they
run: a staff account names its operator, and the console user is the one whose login it
names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.sql import ColumnElement

from shequn.community.tables import staff_accounts, staff_assignments
from shequn.members.tables import members


def assigned_member_ids(tenant_id: str, operator: str) -> Any:
    """A subquery of the ids of the members assigned to the staff accounts that `operator`
    (a console login) runs."""
    return (
        select(staff_assignments.c.member_id)
        .select_from(
            staff_assignments.join(
                staff_accounts,
                and_(
                    staff_accounts.c.tenant_id == staff_assignments.c.tenant_id,
                    staff_accounts.c.id == staff_assignments.c.staff_account_id,
                ),
            )
        )
        .where(
            staff_assignments.c.tenant_id == tenant_id,
            func.lower(staff_accounts.c.operator) == operator.lower(),
        )
    )


def member_visible(tenant_id: str, operator: str | None) -> ColumnElement[bool]:
    """The condition a member row meets when the user may see it (`operator` None: any)."""
    if operator is None:
        return members.c.tenant_id == tenant_id
    return members.c.id.in_(assigned_member_ids(tenant_id, operator))
