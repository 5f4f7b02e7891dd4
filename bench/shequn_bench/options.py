"""What a run is asked to do, and the shop every run seeds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: the API server runs from there
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
PRODUCTS = (
    ("TRIAL", "试用装", 990, "bait"),
    ("CREAM", "面霜", 19_900, "core"),
    ("KIT", "合伙人礼包", 99_900, "partner"),
)
SKUS = tuple(p[0] for p in PRODUCTS)
LEVEL_RATES_BP = (1_000, 500)
HISTORY_PER_BUYER = 2  # default paid orders of history per buyer
DEFAULT_ROUNDS = 4  # order segments, each followed by a pgbench segment


@dataclass(frozen=True)
class Options:
    admin_url: str
    database: str
    workers: int
    clients: int
    duration: float
    orders: int
    warmup: float
    pool_size: int
    roots: int
    middles: int
    buyers: int
    history: int
    pgbench_duration: int
    pgbench_scale: int
    seed: int
    # Defaults, so that bench/order_cost.py need not name them.
    rounds: int = DEFAULT_ROUNDS
    hot_upline: bool = False  # also a load whose buyers all sit under the same two uplines


def order_seconds(options: Options) -> float:
    """Length of one order segment."""
    return options.duration / options.rounds


def pgbench_seconds(options: Options) -> int:
    """Length of one pgbench segment: `pgbench -T` takes whole seconds."""
    return max(1, round(options.pgbench_duration / options.rounds))
