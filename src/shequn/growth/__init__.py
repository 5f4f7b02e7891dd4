"""Growth: share links and channel codes, sharing programs, coupons, points, fraud holds and
agent cloud stock — what turns customers into sharers and members into partners. Each idea is
a sub-package of its own; `shequn.growth.sweep` follows the orders' lifecycle (paid, closed,
refunded, cancelled) from the event log for all of them."""
