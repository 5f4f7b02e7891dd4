"""Coupons: templates (amount or percent off, minimum spend, validity, limits, scope, stacking,
restore on refund), the coupons issued from them (by programs, by operators, claimed by code),
and their use at order creation, with the discount spread over the lines it covers."""
