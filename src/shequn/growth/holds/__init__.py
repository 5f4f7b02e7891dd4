"""Fraud holds: the identity signals a shop reports (device, address, payment account, as
fingerprints), the checks they feed (self-referral, linked accounts in one chain, velocity,
re-registration after deletion), and the commissions and rewards held for an operator's
decision (release or cancel, with a reason)."""
