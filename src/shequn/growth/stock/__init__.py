"""Agent cloud stock (云仓): agents buy units at their tier's wholesale price into a balance per
product (a ledger currency per product, never negative); retail orders attributed to an agent
are fulfilled from it at payment (`shequn.distribution.commissions.draw_agent_stock`), the
proceeds its own-sale income; a stock order that would give more days of cover than the
tenant allows is refused with the figure; unsold units may be bought back under the tenant's
policy (seed 001: agents without outlets are left with stock rotting in their hands)."""
