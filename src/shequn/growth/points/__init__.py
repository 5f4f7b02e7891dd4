"""Points (群内货币): a ledger currency kept in lots, earned by purchases (times the tier's
multiplier), by rituals and events (the tenant's rules) and by sharing; spent as an order
discount or on the redemption list, oldest lot first; each lot expires after the tenant's
number of days. A member's tier is its status; its points are what it may spend."""
