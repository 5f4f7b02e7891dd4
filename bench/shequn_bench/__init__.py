"""The parts of `bench/orders.py`, which `bench/order_cost.py` shares: a package, so that each
concern (seeding, the load, pgbench, the report) can be read on its own."""
