"""Sharing programs (社会化分享): any member shares (no agent tier needed); when an order a share
brought closes, the sharer is rewarded (cashback of what was paid, a fixed amount, a coupon,
points or a tier) and a new customer gets a coupon, within caps per day and month; a refund
after close takes the reward back. Money and points go through the ledger."""
