"""Dunbar-capped groups: placement by policy, join codes, split and import."""
