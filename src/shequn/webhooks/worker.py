"""The delivery worker: claims due deliveries, sends them signed, records every attempt.

A worker claims a batch in one short transaction (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
that several workers take different deliveries): it marks them as its own until a lease ends,
commits, and only then sends them, each in a transaction of its own that records the attempt
and the outcome if the delivery is still its own. No transaction stays open while a receiver
answers. A worker that dies mid-batch leaves its deliveries to be claimed again when the lease
ends, so a receiver may see a delivery twice (webhooks are at least once: receivers keep the
event ids they have seen); while it lives, no other worker sends the same delivery.

The claim applies the ordering rule of `rules`: a delivery whose subject has an older pending
or dead delivery to the same endpoint is not due (a claimed one is still pending).

Before each attempt the worker resolves the endpoint's host and sends to an address it
resolved, only if every address is public (`rules.is_public_address`): the connection goes to
the address checked, with the endpoint's host name in `Host` and in TLS, so that a name that
resolves inward between the check and the connection is not followed. A refused address is a
failed attempt. Redirects are never followed. A deployment that allows private hosts skips
the check. Once an hour the worker prunes finished deliveries past their retention.

Start it in a process that serves the API with `start_delivery_worker`, from the command line
with `shequn webhooks deliver`.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from sqlalchemy import Connection, and_, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError

from shequn import __version__
from shequn.clock import Clock, SystemClock
from shequn.config import load_settings
from shequn.db import Database
from shequn.events.tables import events
from shequn.ids import new_id
from shequn.jsoncodec import dumps_json
from shequn.webhooks import rules
from shequn.webhooks.rules import DeliveryStatus, RetryPolicy
from shequn.webhooks.service import DEFAULT_RETENTION, prune_deliveries
from shequn.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

log = logging.getLogger(__name__)

USER_AGENT = f"Shequn-Webhooks/{__version__}"
# What of a refusing receiver's answer is kept with the attempt.
ANSWER_KEPT_BYTES = 200


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker claims and sends. `timeout` bounds each phase of a request (connect,
    write, read); `lease` is how long a claim lasts, long enough for a whole batch;
    `tenant_id` limits the worker to one tenant's deliveries (every tenant's by default);
    `allow_private_hosts` lets it send to private and local addresses (the deployment's
    SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS); finished deliveries older than `retention` are
    pruned every `prune_every` while it runs (never, when `retention` is None)."""

    batch_size: int = 20
    concurrency: int = 4
    timeout: float = 10.0
    idle_seconds: float = 1.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    tenant_id: str | None = None
    allow_private_hosts: bool = False
    retention: timedelta | None = DEFAULT_RETENTION
    prune_every: timedelta = timedelta(hours=1)

    @property
    def lease(self) -> timedelta:
        rounds = math.ceil(self.batch_size / max(self.concurrency, 1))
        return timedelta(seconds=max(60.0, 4 * self.timeout * rounds + 30.0))


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds, with what it needs to send it."""

    tenant_id: str
    id: str
    endpoint_id: str
    url: str
    secret_salt: str
    previous_secret_salt: str | None
    previous_secret_expires_at: datetime | None
    attempts: int
    failures: int
    event: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return rules.succeeded(self.status_code)


@dataclass
class Totals:
    """What a worker did: deliveries delivered, failed and to be retried, and given up
    (dead); `lost` counts results not recorded because the claim had ended (an operator
    skipped the delivery meanwhile, or the lease ran out)."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    lost: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.dead + self.lost

    def add(self, other: Totals) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.lost += other.lost

    def as_dict(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "dead": self.dead,
            "lost": self.lost,
        }


def event_body(event: dict[str, Any]) -> bytes:
    """The JSON body of a delivery: the event as recorded and as `GET /events` shows it (the
    time in UTC with a `Z`); these bytes are what is signed."""
    occurred_at: datetime = event["occurred_at"]
    return dumps_json(
        {
            "id": event["id"],
            "type": event["type"],
            "tenant_id": event["tenant_id"],
            "subject_type": event["subject_type"],
            "subject_id": event["subject_id"],
            "actor": event["actor"],
            "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "payload": event["payload"],
        }
    ).encode()


def _due(d: Any, now: datetime, tenant_id: str | None) -> list[Any]:
    """The conditions of a claimable delivery (`rules.is_claimable`, `rules.holds_back`) on the
    deliveries table `d`, of one tenant or all."""
    older = webhook_deliveries.alias("older")
    e = webhook_endpoints
    held_back = exists().where(
        older.c.tenant_id == d.c.tenant_id,
        older.c.endpoint_id == d.c.endpoint_id,
        older.c.subject_type == d.c.subject_type,
        older.c.subject_id == d.c.subject_id,
        older.c.event_id < d.c.event_id,
        older.c.status.in_([s.value for s in rules.HOLDS_BACK]),
    )
    active = exists().where(e.c.tenant_id == d.c.tenant_id, e.c.id == d.c.endpoint_id, e.c.active)
    return [
        *([] if tenant_id is None else [d.c.tenant_id == tenant_id]),
        d.c.status == DeliveryStatus.PENDING.value,
        d.c.next_attempt_at <= now,
        or_(d.c.claimed_until.is_(None), d.c.claimed_until <= now),
        active,
        ~held_back,
    ]


def count_due(db: Database, *, now: datetime, tenant_id: str | None = None) -> int:
    """How many deliveries a worker could claim now (of one tenant, or all)."""
    d = webhook_deliveries
    with db.read() as tx:
        query = select(func.count()).select_from(d).where(*_due(d, now, tenant_id))
        return int(tx.execute(query).scalar_one())


def claim_due(
    db: Database,
    *,
    worker_id: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    tenant_id: str | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due deliveries (of one tenant, or all) for `worker_id` until
    `now + lease`, oldest due first."""
    d = webhook_deliveries
    with db.transaction() as tx:
        query = (
            select(d.c.tenant_id, d.c.id)
            .where(*_due(d, now, tenant_id))
            .order_by(d.c.next_attempt_at, d.c.event_id)
            .limit(limit)
        )
        if tx.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=d)
        keys = [tuple(r) for r in tx.execute(query)]
        if not keys:
            return []
        tx.execute(
            update(d)
            .where(tuple_(d.c.tenant_id, d.c.id).in_(keys))
            .values(claimed_by=worker_id, claimed_until=now + lease)
        )
        return _claimed(tx, keys)


def _claimed(tx: Connection, keys: Sequence[tuple[Any, ...]]) -> list[Claimed]:
    d, e, v = webhook_deliveries, webhook_endpoints, events
    rows = tx.execute(
        select(
            d.c.tenant_id,
            d.c.id,
            d.c.endpoint_id,
            d.c.attempts,
            d.c.failures,
            e.c.url,
            e.c.secret_salt,
            e.c.previous_secret_salt,
            e.c.previous_secret_expires_at,
            v.c.id.label("event_id"),
            v.c.type,
            v.c.subject_type,
            v.c.subject_id,
            v.c.actor,
            v.c.occurred_at,
            v.c.payload,
        )
        .select_from(d)
        .join(e, and_(e.c.tenant_id == d.c.tenant_id, e.c.id == d.c.endpoint_id))
        .join(v, and_(v.c.tenant_id == d.c.tenant_id, v.c.id == d.c.event_id))
        .where(tuple_(d.c.tenant_id, d.c.id).in_(list(keys)))
        .order_by(d.c.next_attempt_at, d.c.event_id)
    ).all()
    return [
        Claimed(
            tenant_id=r.tenant_id,
            id=r.id,
            endpoint_id=r.endpoint_id,
            url=r.url,
            secret_salt=r.secret_salt,
            previous_secret_salt=r.previous_secret_salt,
            previous_secret_expires_at=r.previous_secret_expires_at,
            attempts=r.attempts,
            failures=r.failures,
            event={
                "id": r.event_id,
                "type": r.type,
                "tenant_id": r.tenant_id,
                "subject_type": r.subject_type,
                "subject_id": r.subject_id,
                "actor": r.actor,
                "occurred_at": r.occurred_at,
                "payload": r.payload,
            },
        )
        for r in rows
    ]


def signing_secrets(server_key: str, claimed: Claimed, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while
    its grace period lasts."""
    found = [
        rules.signing_secret(
            server_key,
            tenant_id=claimed.tenant_id,
            endpoint_id=claimed.endpoint_id,
            salt=claimed.secret_salt,
        )
    ]
    expires = claimed.previous_secret_expires_at
    if claimed.previous_secret_salt is not None and expires is not None and now < expires:
        found.append(
            rules.signing_secret(
                server_key,
                tenant_id=claimed.tenant_id,
                endpoint_id=claimed.endpoint_id,
                salt=claimed.previous_secret_salt,
            )
        )
    return found


# (host, port) → the addresses it resolves to, as text.
Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system's resolver), each once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where an attempt connects: the URL with the checked address in place of the host, and
    the host's name for `Host` and TLS."""

    url: httpx2.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


def checked_target(
    url: str, *, allow_private: bool, resolve: Resolver = resolve_host
) -> Target | str:
    """Where to connect for `url`, or why not: a host that does not resolve, or resolves to an
    address that is not public (unless the deployment allows private hosts). The target is
    the address checked, so that a name resolving elsewhere a moment later is not followed."""
    parsed = httpx2.URL(url)
    if allow_private:
        return Target(parsed, {}, {})
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return rules.clipped_error(f"DNS: {host[:64]} does not resolve ({exc})")
    refused = rules.refused_addresses(addresses)
    if refused or not addresses:
        shown = refused[0] if refused else "-"
        where = host if shown == host else f"{host[:64]} resolves to {shown}"
        return rules.clipped_error(f"refused: {where}, not a public address")
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Target(parsed.copy_with(host=addresses[0]), headers, extensions)


class DeliveryWorker:
    """Claims, sends and records deliveries; `run_once` for one batch, `drain` until nothing
    is due, `run` until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        server_key: str,
        clock: Clock | None = None,
        options: WorkerOptions | None = None,
        http: httpx2.Client | None = None,
        rng: random.Random | None = None,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.db = db
        self.resolve = resolve
        self._pruned_at: datetime | None = None
        self.server_key = server_key
        self.clock = clock or SystemClock()
        self.options = options or WorkerOptions()
        self.worker_id = new_id("whw")
        self._own_http = http is None
        self.http = http or httpx2.Client(
            timeout=self.options.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self.rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max(self.options.concurrency, 1), thread_name_prefix="shequn-webhooks"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._own_http:
            self.http.close()

    def __enter__(self) -> DeliveryWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def prune(self) -> int:
        """Delete finished deliveries past the retention now (and note when)."""
        now = self.clock.now()
        self._pruned_at = now
        if self.options.retention is None:
            return 0
        return prune_deliveries(
            self.db, now=now, keep=self.options.retention, tenant_id=self.options.tenant_id
        )

    def prune_if_due(self) -> int:
        """Prune when `prune_every` has passed since the last pruning (or none was done)."""
        last = self._pruned_at
        if last is None or self.clock.now() - last >= self.options.prune_every:
            return self.prune()
        return 0

    def run_once(self) -> Totals:
        """Claim one batch, send it and record the outcomes."""
        claimed = claim_due(
            self.db,
            worker_id=self.worker_id,
            now=self.clock.now(),
            limit=self.options.batch_size,
            lease=self.options.lease,
            tenant_id=self.options.tenant_id,
        )
        totals = Totals()
        for result in self._pool.map(self._deliver, claimed):
            totals.add(result)
        return totals

    def drain(self, on_round: Callable[[Totals], None] | None = None) -> Totals:
        """Send batches until nothing is due (deliveries waiting for a retry stay)."""
        totals = Totals()
        while True:
            done = self.run_once()
            if done.attempted == 0:
                return totals
            totals.add(done)
            if on_round is not None:
                on_round(done)

    def run(
        self, stop: threading.Event, on_round: Callable[[Totals], None] | None = None
    ) -> Totals:
        """Send batches until `stop` is set, waiting `idle_seconds` whenever nothing is due.
        A database that does not answer is waited for, not given up on."""
        totals = Totals()
        while not stop.is_set():
            try:
                self.prune_if_due()
                done = self.run_once()
            except SQLAlchemyError:
                log.exception("webhook delivery round failed; trying again")
                stop.wait(self.options.idle_seconds)
                continue
            totals.add(done)
            if on_round is not None and done.attempted:
                on_round(done)
            if done.attempted == 0:
                stop.wait(self.options.idle_seconds)
        return totals

    def _draw(self) -> float:
        with self._rng_lock:
            return self.rng.random()

    def _deliver(self, claimed: Claimed) -> Totals:
        now = self.clock.now()
        outcome = self._send(claimed, now)
        return self._record(claimed, outcome)

    def _target(self, url: str) -> Target | str:
        return checked_target(
            url, allow_private=self.options.allow_private_hosts, resolve=self.resolve
        )

    def _send(self, claimed: Claimed, now: datetime) -> Outcome:
        body = event_body(claimed.event)
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            rules.SIGNATURE_HEADER: rules.signature_header(
                signing_secrets(self.server_key, claimed, now), timestamp, body
            ),
            "Shequn-Delivery-Id": claimed.id,
            "Shequn-Event-Id": claimed.event["id"],
            "Shequn-Event-Type": claimed.event["type"],
        }
        started = time.perf_counter()
        try:
            target = self._target(claimed.url)
        except httpx2.InvalidURL as exc:
            target = rules.clipped_error(f"InvalidURL: {exc}")
        if isinstance(target, str):
            return Outcome(None, target, _ms(started))
        try:
            with self.http.stream(
                "POST",
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ) as answer:
                kept = b""
                for chunk in answer.iter_bytes():
                    kept += chunk
                    if len(kept) >= ANSWER_KEPT_BYTES:
                        break
                code = answer.status_code
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            reason = str(exc) or type(exc).__name__
            return Outcome(
                None, rules.clipped_error(f"{type(exc).__name__}: {reason}"), _ms(started)
            )
        duration = _ms(started)
        if rules.succeeded(code):
            return Outcome(code, None, duration)
        text = kept[:ANSWER_KEPT_BYTES].decode("utf-8", errors="replace")
        return Outcome(code, rules.clipped_error(f"HTTP {code} {text}".strip()), duration)

    def _record(self, claimed: Claimed, outcome: Outcome) -> Totals:
        now = self.clock.now()
        policy = self.options.policy
        values: dict[str, Any] = {
            "attempts": claimed.attempts + 1,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "claimed_by": None,
            "claimed_until": None,
        }
        result = Totals()
        if outcome.succeeded:
            values.update(status=DeliveryStatus.DELIVERED.value, failures=0, delivered_at=now)
            result.delivered = 1
        else:
            failures = claimed.failures + 1
            values["failures"] = failures
            if policy.gives_up(failures):
                values["status"] = DeliveryStatus.DEAD.value
                result.dead = 1
            else:
                values["next_attempt_at"] = now + policy.delay(failures, self._draw())
                result.retrying = 1
        d = webhook_deliveries
        with self.db.transaction() as tx:
            still_ours = tx.execute(
                update(d)
                .where(
                    d.c.tenant_id == claimed.tenant_id,
                    d.c.id == claimed.id,
                    d.c.claimed_by == self.worker_id,
                    d.c.status == DeliveryStatus.PENDING.value,
                )
                .values(values)
            ).rowcount
            if still_ours != 1:
                return Totals(lost=1)
            tx.execute(
                insert(webhook_attempts).values(
                    tenant_id=claimed.tenant_id,
                    delivery_id=claimed.id,
                    attempt=claimed.attempts + 1,
                    attempted_at=now,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    succeeded=outcome.succeeded,
                )
            )
        return result


def _ms(started: float) -> int:
    return max(int((time.perf_counter() - started) * 1000), 0)


@dataclass
class RunningWorker:
    """A worker running on a thread of its own; `stop` ends it after the batch in hand."""

    worker: DeliveryWorker
    thread: threading.Thread
    stopping: threading.Event

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.worker.close()


def start_delivery_worker(
    db: Database,
    *,
    server_key: str,
    clock: Clock | None = None,
    options: WorkerOptions | None = None,
    on_round: Callable[[Totals], None] | None = None,
) -> RunningWorker:
    """Run a delivery worker in this process on a daemon thread until `stop()` (for `shequn
    serve` and the demo: call it when the application starts and `stop()` when it ends).
    `server_key` is the deployment's SHEQUN_SECRET_KEY, from which the signing secrets are
    derived; `on_round` hears what each batch that sent something did (on the worker's
    thread). Without `options`, the defaults, with SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS read from
    the environment."""
    if options is None:
        allowed = load_settings().webhook_allow_private_hosts
        options = WorkerOptions(allow_private_hosts=allowed)
    worker = DeliveryWorker(db, server_key=server_key, clock=clock, options=options)
    stopping = threading.Event()
    thread = threading.Thread(
        target=worker.run,
        args=(stopping, on_round),
        name="shequn-webhook-worker",
        daemon=True,
    )
    thread.start()
    return RunningWorker(worker, thread, stopping)
