"""Import and export: members, orders and referral ties from CSV files; members, orders,
commissions and the ledger to CSV or Parquet (`rules` reads and checks the rows, `imports` and
`exports` are the use cases). It stands above the domains and writes through them."""
