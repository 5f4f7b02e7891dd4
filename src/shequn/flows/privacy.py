"""A member's personal data erased on request (PIPL 个人信息保护法: the right to deletion),
while what the business must keep stays: the member's id, its place in the referral tree, its
orders, its commissions and its ledger, so the books still balance."""

from __future__ import annotations

from typing import Any

from shequn.context import Ctx
from shequn.members.service import erase_personal_fields, member_view
from shequn.referrals.binding import forget_touches


def anonymise_member(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """Erase the member's name, phone, external id, tags and the share touches recorded under
    its phone or external id. Doing it again changes nothing."""
    with ctx.db.transaction() as tx:
        erased = erase_personal_fields(tx, ctx, member_id=member_id)
        if erased is not None:
            phone, external_id = erased
            forget_touches(tx, ctx.tenant_id, phone=phone, external_id=external_id)
        return member_view(tx, ctx.tenant_id, member_id)
