"""CPU and database counters, read around each segment: the server-wide ones move with either
side's work, so each side sums its own segments."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# --- CPU --------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU of one process (with `reaped`, also that of its exited children),
    or 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU of the PostgreSQL server, monotonic: the postmaster reaps exited backends, so their
    time lands in its children's time."""
    return sum(process_cpu_seconds(pid, reaped=True) for pid in postgres_pids())


def process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in ("postgres", "postmaster") or name.startswith("postgres"):
            pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, float]
    postgres: float
    client: float
    busy: float
    total: float


def cpu_snapshot(server_pgid: int) -> CpuSnapshot:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy, total = machine_busy_seconds()
    return CpuSnapshot(
        server={pid: process_cpu_seconds(pid) for pid in process_group(server_pgid)},
        postgres=postgres_cpu_seconds(),
        client=usage.ru_utime + usage.ru_stime,
        busy=busy,
        total=total,
    )


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@dataclass(frozen=True)
class CpuUse:
    server: float
    postgres: float
    client: float
    machine_busy: float
    machine_total: float

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(
            server=self.server + other.server,
            postgres=self.postgres + other.postgres,
            client=self.client + other.client,
            machine_busy=self.machine_busy + other.machine_busy,
            machine_total=self.machine_total + other.machine_total,
        )


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    return CpuUse(
        server=_grown(before.server, after.server),
        postgres=after.postgres - before.postgres,
        client=after.client - before.client,
        machine_busy=after.busy - before.busy,
        machine_total=after.total - before.total,
    )


class CpuProbe:
    """CPU of the server, PostgreSQL, this client and the machine, summed over the windows
    from each `start` to the next `stop` (one load's order segments)."""

    def __init__(self, server_pgid: int) -> None:
        self.server_pgid = server_pgid
        self.before: CpuSnapshot | None = None
        self.use: CpuUse | None = None

    def start(self) -> None:
        self.before = cpu_snapshot(self.server_pgid)

    def stop(self) -> None:
        if self.before is not None:
            used = cpu_between(self.before, cpu_snapshot(self.server_pgid))
            self.use = used if self.use is None else self.use + used
            self.before = None


# --- the database -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DbCounters:
    """What PostgreSQL did for one database (cumulative statistics) and for the whole server
    (WAL position, CPU of its processes)."""

    commits: int
    inserted: int
    updated: int
    wal_bytes: int
    postgres_cpu: float
    checkpoints: int  # begun by the server, on time or on request


def db_counters(admin_url: str, database: str) -> DbCounters:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT d.xact_commit, d.tup_inserted, d.tup_updated,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
            " FROM pg_stat_database d WHERE d.datname = %s",
            (database,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no statistics for database {database}")
    cpu = postgres_cpu_seconds()
    return DbCounters(int(row[0]), int(row[1]), int(row[2]), int(row[3]), cpu, int(row[4]))


@dataclass
class ServerTally:
    """The server-wide counters summed over the segments of one side, each segment read at
    its start and at its end."""

    wal_bytes: int = 0
    postgres_cpu: float = 0.0
    checkpoints: int = 0

    def add(self, before: DbCounters, after: DbCounters) -> None:
        self.wal_bytes += after.wal_bytes - before.wal_bytes
        self.postgres_cpu += after.postgres_cpu - before.postgres_cpu
        self.checkpoints += after.checkpoints - before.checkpoints


@dataclass(frozen=True)
class DbWork:
    """PostgreSQL work per unit (a paid order, a TPC-B transaction)."""

    commits: float
    rows_written: float
    wal_bytes: float
    postgres_cpu_ms: float
    checkpoints: int  # during the side's segments (not per unit)


def db_work(
    before: DbCounters, after: DbCounters, units: int, server: ServerTally, server_units: int
) -> DbWork:
    """Commits and rows written from the database's counters, per `units` (all the work done
    between `before` and `after`); WAL and CPU from the side's segments, per `server_units`
    (the work done inside them)."""
    n, m = max(1, units), max(1, server_units)
    written = (after.inserted - before.inserted) + (after.updated - before.updated)
    return DbWork(
        commits=(after.commits - before.commits) / n,
        rows_written=written / n,
        wal_bytes=server.wal_bytes / m,
        postgres_cpu_ms=server.postgres_cpu / m * 1000,
        checkpoints=server.checkpoints,
    )


def wait_for_statistics() -> None:
    """A backend that goes idle keeps its unpublished counters for up to ten seconds, so the
    databases' counters are read only when nothing that worked on them is still connected,
    after giving the last ones a moment to publish."""
    time.sleep(1.5)
