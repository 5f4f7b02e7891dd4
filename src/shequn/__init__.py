"""Shequn (社群): a community-commerce engine."""

__version__ = "0.1.0"
