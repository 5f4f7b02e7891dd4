"""Rituals (仪): welcome messages, badges and titles, certificates, and the chronicle."""
