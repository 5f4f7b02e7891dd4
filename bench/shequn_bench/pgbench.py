"""The reference: pgbench's TPC-B (its default script) on a database of its own, in segments
that alternate with the order segments."""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import subprocess
from contextlib import suppress
from dataclasses import dataclass, field

from .accounting import DbCounters, DbWork, ServerTally, db_counters, db_work

TPS_PATTERN = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
PROCESSED_PATTERN = re.compile(r"number of transactions actually processed: (\d+)")


def require_pgbench() -> None:
    if shutil.which("pgbench") is None:
        raise RuntimeError("pgbench is not installed")


def init_pgbench(url: str, scale: int) -> None:
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(scale), url],
        check=True,
        capture_output=True,
        text=True,
    )


@dataclass(frozen=True)
class PgbenchSegment:
    tps: float  # pgbench's own figure, without the time to connect
    transactions: int
    client_cpu: float  # seconds of pgbench's own CPU

    @property
    def seconds(self) -> float:
        """The seconds pgbench measured its transactions over."""
        return self.transactions / self.tps if self.tps > 0 else 0.0


@dataclass
class PgbenchLoad:
    """The pgbench side of the rounds."""

    database: str
    url: str
    clients: int
    seconds: int  # -T of each segment
    segments: list[PgbenchSegment] = field(default_factory=list)
    server: ServerTally = field(default_factory=ServerTally)  # over the pgbench segments


async def run_pgbench(url: str, clients: int, seconds: int) -> PgbenchSegment:
    """One run of TPC-B as a subprocess of the event loop, so that an interruption cancels it
    and stops pgbench."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        *("pgbench", "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds), url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:  # interrupted: pgbench stops too, before the loop does
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    # pgbench has been reaped, so its CPU is in this process's children's time.
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"pgbench exited with status {process.returncode}:\n{stderr}")
    match = TPS_PATTERN.search(stdout)
    processed = PROCESSED_PATTERN.search(stdout)
    if match is None or processed is None:
        raise RuntimeError(f"no TPS in the pgbench output:\n{stdout}\n{stderr}")
    return PgbenchSegment(
        tps=float(match.group(1)),
        transactions=int(processed.group(1)),
        client_cpu=(used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime),
    )


async def pgbench_segment(admin_url: str, bench: PgbenchLoad) -> PgbenchSegment:
    """One pgbench segment (the HTTP clients parked), between two readings of the server-wide
    counters."""
    before = db_counters(admin_url, bench.database)
    done = await run_pgbench(bench.url, bench.clients, bench.seconds)
    bench.server.add(before, db_counters(admin_url, bench.database))
    bench.segments.append(done)
    return done


@dataclass(frozen=True)
class Pgbench:
    tps: float
    transactions: int
    work: DbWork
    client_cpu_ms: float
    seconds: int  # -T in all
    seconds_each: int  # -T of each segment
    rounds: list[float]  # tps of each segment


def summarise_pgbench(bench: PgbenchLoad, before: DbCounters, after: DbCounters) -> Pgbench:
    """All the segments: the transactions over the seconds pgbench measured them in, the work
    per transaction."""
    transactions = sum(segment.transactions for segment in bench.segments)
    seconds = sum(segment.seconds for segment in bench.segments)
    client_cpu = sum(segment.client_cpu for segment in bench.segments)
    return Pgbench(
        tps=transactions / seconds if seconds > 0 else 0.0,
        transactions=transactions,
        work=db_work(before, after, transactions, bench.server, transactions),
        client_cpu_ms=client_cpu / max(1, transactions) * 1000,
        seconds=bench.seconds * len(bench.segments),
        seconds_each=bench.seconds,
        rounds=[segment.tps for segment in bench.segments],
    )
