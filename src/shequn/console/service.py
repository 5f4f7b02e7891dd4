"""Console users and their sessions; portal logins of members (password or one-time code).

A password is checked outside any transaction (argon2 takes tens of milliseconds on purpose);
what a check changes (the count of failures, the lock, a new session) is one conditional write,
so two wrong passwords at once count twice and a lock set meanwhile is never cleared by a
success."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Row, and_, case, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from shequn.clock import Clock
from shequn.community.outbox import Message, enqueue_messages
from shequn.community.tables import staff_assignments
from shequn.console.delivery import CodeMessage, deliver_code
from shequn.console.rules import (
    CODE_DIGITS,
    CODE_MAX_ATTEMPTS,
    CODE_TTL,
    LOCKOUT,
    ConsoleRole,
    SessionKind,
    check_password,
    clean_code,
    clean_display_name,
    clean_login,
    code_digest,
    is_locked,
    minutes_until,
    needs_touch,
    parse_role,
    resend_wait_seconds,
    session_alive,
    token_hash,
)
from shequn.console.tables import (
    console_sessions,
    console_users,
    login_attempts,
    portal_codes,
    portal_credentials,
)
from shequn.context import Ctx
from shequn.db import Database, UTCDateTime
from shequn.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from shequn.events.service import record_event
from shequn.i18n import translate
from shequn.ids import new_id
from shequn.members.rules import normalise_phone
from shequn.members.tables import members
from shequn.tenancy.tables import tenant_settings, tenants

# Argon2id with OWASP's recommended parameters (19 MiB, two passes, one lane): a guess costs
# an attacker tens of milliseconds per core, and a login does not hold a worker for long.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Checked against when a login names nobody, so that it takes as long as a wrong password.
_NOBODY = _hasher.hash("nobody-has-this-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _NOBODY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _user_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "login": row.login,
        "display_name": row.display_name,
        "role": row.role,
        "locale": row.locale,
        "locked_until": row.locked_until,
        "last_login_at": row.last_login_at,
        "disabled_at": row.disabled_at,
        "created_at": row.created_at,
    }


# --- console users ---------------------------------------------------------------------------


def create_console_user(
    ctx: Ctx,
    *,
    login: str,
    password: str,
    role: str,
    display_name: str | None = None,
    locale: str | None = None,
) -> dict[str, Any]:
    """A person who logs in to the tenant's console with `login` and `password`."""
    clean = clean_login(login)
    parsed = parse_role(role)
    check_password(password, login=clean)
    name = clean_display_name(display_name, clean)
    if locale not in (None, "zh_CN", "en"):
        raise InvalidInput("setting_invalid", field="locale")
    hashed = hash_password(password)
    now = ctx.clock.now()
    user_id = new_id("cu")
    try:
        with ctx.db.transaction() as tx:
            if (
                tx.execute(
                    select(tenants.c.tenant_id).where(tenants.c.tenant_id == ctx.tenant_id)
                ).first()
                is None
            ):
                raise NotFound("tenant_not_found", id=ctx.tenant_id)
            _refuse_taken_login(tx, clean)
            tx.execute(
                insert(console_users).values(
                    tenant_id=ctx.tenant_id,
                    id=user_id,
                    login=clean,
                    display_name=name,
                    role=parsed.value,
                    password_hash=hashed,
                    locale=locale,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="ConsoleUserCreated",
                subject_type="console_user",
                subject_id=user_id,
                payload={"login": clean, "role": parsed.value},
            )
            return _user_view(_user_row(tx, ctx.tenant_id, user_id))
    except IntegrityError:
        with ctx.db.read() as tx:
            _refuse_taken_login(tx, clean)
        raise


def _refuse_taken_login(tx: Connection, login: str) -> None:
    if tx.execute(select(console_users.c.id).where(console_users.c.login == login)).first():
        raise Conflict("console_login_taken", login=login, field="login")


def _user_row(tx: Connection, tenant_id: str, user_id: str) -> Row[Any]:
    row = tx.execute(
        select(console_users).where(
            console_users.c.tenant_id == tenant_id, console_users.c.id == user_id
        )
    ).first()
    if row is None:
        raise NotFound("console_user_not_found", id=user_id)
    return row


def list_console_users(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(console_users)
            .where(console_users.c.tenant_id == ctx.tenant_id)
            .order_by(console_users.c.login)
        ).all()
    return [_user_view(r) for r in rows]


def get_console_user(ctx: Ctx, *, user_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _user_view(_user_row(tx, ctx.tenant_id, user_id))


def update_console_user(
    ctx: Ctx,
    *,
    user_id: str,
    role: str | None = None,
    display_name: str | None = None,
    disabled: bool | None = None,
    unlock: bool = False,
    password: str | None = None,
) -> dict[str, Any]:
    """Change a user's role, name or password, disable or enable it, or lift its lock; a
    tenant keeps at least one enabled owner, and a disabled user's sessions end."""
    values: dict[str, Any] = {}
    if role is not None:
        values["role"] = parse_role(role).value
    if display_name is not None:
        values["display_name"] = clean_display_name(display_name, "")
        if not values["display_name"]:
            raise InvalidInput("display_name_invalid", field="display_name")
    now = ctx.clock.now()
    if disabled is not None:
        values["disabled_at"] = now if disabled else None
    if unlock:
        values.update(failed_logins=0, locked_until=None)
    with ctx.db.read() as tx:
        current = _user_row(tx, ctx.tenant_id, user_id)
    if password is not None:
        check_password(password, login=current.login)
        values["password_hash"] = hash_password(password)
    if not values:
        return _user_view(current)
    with ctx.db.transaction() as tx:
        result = tx.execute(
            update(console_users)
            .where(console_users.c.tenant_id == ctx.tenant_id, console_users.c.id == user_id)
            .values(**values, updated_at=now)
        )
        if result.rowcount != 1:
            raise NotFound("console_user_not_found", id=user_id)
        owners = tx.execute(
            select(func.count()).where(
                console_users.c.tenant_id == ctx.tenant_id,
                console_users.c.role == ConsoleRole.OWNER.value,
                console_users.c.disabled_at.is_(None),
            )
        ).scalar_one()
        if owners == 0:
            raise Conflict("last_console_owner")
        if values.get("disabled_at") is not None or "password_hash" in values:
            _revoke_sessions_of(tx, ctx.tenant_id, user_id, SessionKind.CONSOLE, now)
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="ConsoleUserChanged",
            subject_type="console_user",
            subject_id=user_id,
            payload={
                "fields": sorted(k for k in values if k != "password_hash")
                + (["password"] if "password_hash" in values else [])
            },
        )
        return _user_view(_user_row(tx, ctx.tenant_id, user_id))


def _revoke_sessions_of(
    tx: Connection, tenant_id: str, principal_id: str, kind: SessionKind, now: datetime
) -> None:
    tx.execute(
        update(console_sessions)
        .where(
            console_sessions.c.tenant_id == tenant_id,
            console_sessions.c.principal_id == principal_id,
            console_sessions.c.kind == kind.value,
            console_sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the raw token goes into the cookie, and nowhere else."""

    token: str
    tenant_id: str
    principal_id: str


def _open_session(
    tx: Connection, *, tenant_id: str, kind: SessionKind, principal_id: str, at: datetime
) -> NewSession:
    token = secrets.token_urlsafe(32)
    tx.execute(
        insert(console_sessions).values(
            tenant_id=tenant_id,
            id=new_id("ses"),
            token_hash=token_hash(token),
            kind=kind.value,
            principal_id=principal_id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=at,
            last_seen_at=at,
        )
    )
    return NewSession(token=token, tenant_id=tenant_id, principal_id=principal_id)


def _attempt(
    tx: Connection,
    *,
    tenant_id: str,
    kind: str,
    principal_id: str,
    succeeded: bool,
    remote: str | None,
    at: datetime,
) -> None:
    tx.execute(
        insert(login_attempts).values(
            tenant_id=tenant_id,
            id=new_id("la"),
            kind=kind,
            principal_id=principal_id,
            succeeded=succeeded,
            remote=(remote or "")[:64] or None,
            at=at,
        )
    )


@dataclass(frozen=True)
class ConsoleSession:
    """Who is behind a console cookie."""

    session_id: str
    tenant_id: str
    tenant_name: str
    time_zone: str
    user_id: str
    login: str
    display_name: str
    role: ConsoleRole
    locale: str | None
    csrf_token: str

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class PortalSession:
    """Who is behind a portal cookie: a member of the tenant."""

    session_id: str
    tenant_id: str
    tenant_name: str
    time_zone: str
    member_id: str
    member_name: str
    has_password: bool
    csrf_token: str

    @property
    def actor(self) -> str:
        return f"member:{self.member_id}"


def _kept_alive(db: Database, kind: SessionKind, row: Any, now: datetime) -> bool:
    """Whether a session found by its token is still alive; its last use is noted now and
    then (not on every request)."""
    if not session_alive(kind, created_at=row.created_at, last_seen_at=row.last_seen_at, now=now):
        return False
    if needs_touch(kind, last_seen_at=row.last_seen_at, now=now):
        _touch(db, row.tenant_id, row.id, now)
    return True


def _touch(db: Database, tenant_id: str, session_id: str, now: datetime) -> None:
    with db.transaction() as tx:
        tx.execute(
            update(console_sessions)
            .where(console_sessions.c.tenant_id == tenant_id, console_sessions.c.id == session_id)
            .values(last_seen_at=now)
        )


def resolve_console_session(*, db: Database, clock: Clock, token: str) -> ConsoleSession | None:
    """The console session of a cookie's token, or None (unknown, ended, or its user disabled)."""
    if not token or len(token) > 100:
        return None
    s, u = console_sessions, console_users
    with db.read() as tx:
        row = tx.execute(
            select(
                s.c.id,
                s.c.tenant_id,
                s.c.csrf_token,
                s.c.created_at,
                s.c.last_seen_at,
                u.c.id.label("user_id"),
                u.c.login,
                u.c.display_name,
                u.c.role,
                u.c.locale,
                tenants.c.name.label("tenant_name"),
                tenant_settings.c.time_zone,
            )
            .select_from(
                s.join(u, and_(u.c.tenant_id == s.c.tenant_id, u.c.id == s.c.principal_id))
                .join(tenants, tenants.c.tenant_id == s.c.tenant_id)
                .join(tenant_settings, tenant_settings.c.tenant_id == s.c.tenant_id)
            )
            .where(
                s.c.token_hash == token_hash(token),
                s.c.kind == SessionKind.CONSOLE.value,
                s.c.revoked_at.is_(None),
                u.c.disabled_at.is_(None),
            )
        ).first()
    if row is None or not _kept_alive(db, SessionKind.CONSOLE, row, clock.now()):
        return None
    return ConsoleSession(
        session_id=row.id,
        tenant_id=row.tenant_id,
        tenant_name=row.tenant_name,
        time_zone=row.time_zone,
        user_id=row.user_id,
        login=row.login,
        display_name=row.display_name,
        role=ConsoleRole(row.role),
        locale=row.locale,
        csrf_token=row.csrf_token,
    )


def end_session(*, db: Database, clock: Clock, token: str) -> None:
    """Log out: the session's token no longer opens anything."""
    if not token or len(token) > 100:
        return
    with db.transaction() as tx:
        tx.execute(
            update(console_sessions)
            .where(
                console_sessions.c.token_hash == token_hash(token),
                console_sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=clock.now())
        )


def set_console_locale(ctx: Ctx, *, user_id: str, locale: str | None) -> None:
    """The language a user's console speaks (None: the browser's)."""
    if locale not in (None, "zh_CN", "en"):
        raise InvalidInput("setting_invalid", field="locale")
    with ctx.db.transaction() as tx:
        tx.execute(
            update(console_users)
            .where(console_users.c.tenant_id == ctx.tenant_id, console_users.c.id == user_id)
            .values(locale=locale, updated_at=ctx.clock.now())
        )


# --- logging in ------------------------------------------------------------------------------


def _count_failure(
    tx: Connection, table: Any, key: Any, now: datetime
) -> tuple[int, datetime | None]:
    """Add one failure to the row at `key` (a lock starts when the count reaches the policy's
    limit); returns the count and the lock as they now are."""
    at = literal(now, UTCDateTime())
    # A lock that has run out starts the count again.
    expired = and_(table.c.locked_until.is_not(None), table.c.locked_until <= at)
    failures = case((expired, 1), else_=table.c.failed_logins + 1)
    until = literal(LOCKOUT.locked_until(LOCKOUT.max_failures, now), UTCDateTime())
    tx.execute(
        update(table)
        .where(key)
        .values(
            failed_logins=failures,
            locked_until=case(
                (failures >= LOCKOUT.max_failures, until),
                (expired, None),
                else_=table.c.locked_until,
            ),
        )
    )
    return _failures(tx, table, key)


def _failures(tx: Connection, table: Any, key: Any) -> tuple[int, datetime | None]:
    row = tx.execute(select(table.c.failed_logins, table.c.locked_until).where(key)).one()
    return int(row.failed_logins), row.locked_until


def _refuse_locked(locked_until: datetime | None, now: datetime) -> None:
    if locked_until is not None and is_locked(locked_until, now):
        raise Forbidden(
            "login_locked",
            minutes=minutes_until(locked_until, now),
            failures=LOCKOUT.max_failures,
        )


def _succeed(tx: Connection, table: Any, key: Any, now: datetime) -> bool:
    """Clear the failures of a login that has just succeeded, unless a lock began meanwhile."""
    result = tx.execute(
        update(table)
        .where(key, or_(table.c.locked_until.is_(None), table.c.locked_until <= now))
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )
    return result.rowcount == 1


def console_login(
    *, db: Database, clock: Clock, login: str, password: str, remote: str | None = None
) -> NewSession:
    """Open a console session for `login` and `password`; refused the same way whether the
    login exists or not, and refused whatever the password while the login is locked."""
    clean = login.strip().lower()[:80]
    with db.read() as tx:
        user = tx.execute(
            select(console_users).where(
                console_users.c.login == clean, console_users.c.disabled_at.is_(None)
            )
        ).first()
    now = clock.now()
    if user is None:
        _password_matches(None, password)
        raise Unauthorized("login_failed")
    _refuse_locked(user.locked_until, now)
    matches = _password_matches(user.password_hash, password)
    key = and_(console_users.c.tenant_id == user.tenant_id, console_users.c.id == user.id)
    with db.transaction() as tx:
        if matches and _succeed(tx, console_users, key, now):
            if _hasher.check_needs_rehash(user.password_hash):
                tx.execute(
                    update(console_users).where(key).values(password_hash=hash_password(password))
                )
            _attempt(
                tx,
                tenant_id=user.tenant_id,
                kind="console",
                principal_id=user.id,
                succeeded=True,
                remote=remote,
                at=now,
            )
            return _open_session(
                tx, tenant_id=user.tenant_id, kind=SessionKind.CONSOLE, principal_id=user.id, at=now
            )
        failures, locked_until = (
            _count_failure(tx, console_users, key, now)
            if not matches
            else _failures(tx, console_users, key)
        )
        _attempt(
            tx,
            tenant_id=user.tenant_id,
            kind="console",
            principal_id=user.id,
            succeeded=False,
            remote=remote,
            at=now,
        )
    _refuse_locked(locked_until, now)
    raise Unauthorized("login_failed_attempts", left=LOCKOUT.attempts_left(failures))


# --- the portal ------------------------------------------------------------------------------


def _portal_member(tx: Connection, tenant_id: str, phone: str) -> Any:
    return tx.execute(
        select(
            members.c.id,
            members.c.phone,
            portal_credentials.c.password_hash,
            portal_credentials.c.failed_logins,
            portal_credentials.c.locked_until,
        )
        .select_from(
            members.outerjoin(
                portal_credentials,
                and_(
                    portal_credentials.c.tenant_id == members.c.tenant_id,
                    portal_credentials.c.member_id == members.c.id,
                ),
            )
        )
        .where(
            members.c.tenant_id == tenant_id,
            members.c.phone == phone,
            members.c.anonymised_at.is_(None),
        )
    ).first()


def _phone(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidInput:
        raise InvalidInput("phone_invalid", field="phone") from None


def _ensure_credentials(tx: Connection, tenant_id: str, member_id: str, now: datetime) -> None:
    exists = tx.execute(
        select(portal_credentials.c.member_id).where(
            portal_credentials.c.tenant_id == tenant_id,
            portal_credentials.c.member_id == member_id,
        )
    ).first()
    if exists is None:
        tx.execute(
            insert(portal_credentials).values(
                tenant_id=tenant_id,
                member_id=member_id,
                failed_logins=0,
                created_at=now,
                updated_at=now,
            )
        )


def _portal_key(tenant_id: str, member_id: str) -> Any:
    return and_(
        portal_credentials.c.tenant_id == tenant_id, portal_credentials.c.member_id == member_id
    )


def set_portal_password(ctx: Ctx, *, member_id: str, password: str) -> None:
    """The password a member logs in to the portal with (set by the member once logged in with
    a code, or by an operator)."""
    check_password(password)
    hashed = hash_password(password)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        found = tx.execute(
            select(members.c.id).where(
                members.c.tenant_id == ctx.tenant_id, members.c.id == member_id
            )
        ).first()
        if found is None:
            raise NotFound("member_not_found", id=member_id)
        _ensure_credentials(tx, ctx.tenant_id, member_id, now)
        tx.execute(
            update(portal_credentials)
            .where(_portal_key(ctx.tenant_id, member_id))
            .values(password_hash=hashed, failed_logins=0, locked_until=None, updated_at=now)
        )


def _tenant_exists(tx: Connection, tenant_id: str) -> None:
    if (
        tx.execute(select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first()
        is None
    ):
        raise NotFound("tenant_not_found", id=tenant_id)


def portal_password_login(
    *,
    db: Database,
    clock: Clock,
    tenant_id: str,
    phone: str,
    password: str,
    remote: str | None = None,
) -> NewSession:
    """Open a portal session for the member with `phone` and its portal password."""
    clean = _phone(phone)
    with db.read() as tx:
        _tenant_exists(tx, tenant_id)
        found = _portal_member(tx, tenant_id, clean)
    now = clock.now()
    if found is None or found.password_hash is None:
        _password_matches(None, password)
        raise Unauthorized("login_failed")
    _refuse_locked(found.locked_until, now)
    matches = _password_matches(found.password_hash, password)
    key = _portal_key(tenant_id, found.id)
    with db.transaction() as tx:
        if matches and _succeed(tx, portal_credentials, key, now):
            _attempt(
                tx,
                tenant_id=tenant_id,
                kind="portal_password",
                principal_id=found.id,
                succeeded=True,
                remote=remote,
                at=now,
            )
            return _open_session(
                tx, tenant_id=tenant_id, kind=SessionKind.PORTAL, principal_id=found.id, at=now
            )
        failures, locked_until = (
            _count_failure(tx, portal_credentials, key, now)
            if not matches
            else _failures(tx, portal_credentials, key)
        )
        _attempt(
            tx,
            tenant_id=tenant_id,
            kind="portal_password",
            principal_id=found.id,
            succeeded=False,
            remote=remote,
            at=now,
        )
    _refuse_locked(locked_until, now)
    raise Unauthorized("login_failed_attempts", left=LOCKOUT.attempts_left(failures))


def send_portal_code(*, db: Database, clock: Clock, tenant_id: str, phone: str) -> None:
    """Send a one-time login code to the member with `phone` (through the code delivery).
    Nothing tells whether the phone belongs to a member: an unknown one is sent nothing."""
    clean = _phone(phone)
    now = clock.now()
    with db.transaction() as tx:
        _tenant_exists(tx, tenant_id)
        found = _portal_member(tx, tenant_id, clean)
        if found is None:
            return
        _refuse_locked(found.locked_until, now)
        last = tx.execute(
            select(func.max(portal_codes.c.created_at)).where(
                portal_codes.c.tenant_id == tenant_id, portal_codes.c.member_id == found.id
            )
        ).scalar_one()
        wait = resend_wait_seconds(last, now)
        if wait:
            raise Conflict("login_code_wait", seconds=wait)
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        code_id = new_id("otc")
        tx.execute(
            insert(portal_codes).values(
                tenant_id=tenant_id,
                id=code_id,
                member_id=found.id,
                code_hash=code_digest(code_id, code),
                attempts=0,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
        _ensure_credentials(tx, tenant_id, found.id, now)
        _enqueue_code(
            tx, tenant_id=tenant_id, member_id=found.id, code_id=code_id, code=code, at=now
        )
    deliver_code(
        CodeMessage(
            tenant_id=tenant_id,
            member_id=found.id,
            phone=clean,
            code=code,
            minutes=int(CODE_TTL.total_seconds() // 60),
        )
    )


def _enqueue_code(
    tx: Connection, *, tenant_id: str, member_id: str, code_id: str, code: str, at: datetime
) -> None:
    """The code goes out through the community's outbox, in the send's own transaction: to the
    staff account the member is assigned to (its channel, or its operator's task list)."""
    assigned = tx.execute(
        select(staff_assignments.c.staff_account_id).where(
            staff_assignments.c.tenant_id == tenant_id,
            staff_assignments.c.member_id == member_id,
        )
    ).scalar_one_or_none()
    minutes = int(CODE_TTL.total_seconds() // 60)
    enqueue_messages(
        tx,
        tenant_id=tenant_id,
        at=at,
        messages=[
            Message(
                dedupe_key=f"portal-code:{code_id}",
                kind="portal_login_code",
                body=translate("portal.code_message", code=code, minutes=minutes),
                staff_account_id=assigned,
                member_id=member_id,
                due_at=at + CODE_TTL,
                payload={"code_id": code_id},
            )
        ],
    )


def portal_code_login(
    *,
    db: Database,
    clock: Clock,
    tenant_id: str,
    phone: str,
    code: str,
    remote: str | None = None,
) -> NewSession:
    """Open a portal session with the latest code sent to `phone` (each code works once, for
    a few minutes and a few tries)."""
    clean_phone = _phone(phone)
    digits = clean_code(code)
    now = clock.now()
    with db.transaction() as tx:
        _tenant_exists(tx, tenant_id)
        found = _portal_member(tx, tenant_id, clean_phone)
        if found is None:
            raise Unauthorized("login_code_wrong")
        _refuse_locked(found.locked_until, now)
        latest = tx.execute(
            select(portal_codes)
            .where(
                portal_codes.c.tenant_id == tenant_id,
                portal_codes.c.member_id == found.id,
                portal_codes.c.used_at.is_(None),
                portal_codes.c.expires_at > now,
                portal_codes.c.attempts < CODE_MAX_ATTEMPTS,
            )
            .order_by(portal_codes.c.created_at.desc(), portal_codes.c.id.desc())
            .limit(1)
        ).first()
        right = latest is not None and secrets.compare_digest(
            latest.code_hash, code_digest(latest.id, digits)
        )
        if latest is not None and right:
            used = tx.execute(
                update(portal_codes)
                .where(
                    portal_codes.c.tenant_id == tenant_id,
                    portal_codes.c.id == latest.id,
                    portal_codes.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
            if used.rowcount == 1:
                tx.execute(
                    update(portal_credentials)
                    .where(_portal_key(tenant_id, found.id))
                    .values(failed_logins=0, last_login_at=now)
                )
                _attempt(
                    tx,
                    tenant_id=tenant_id,
                    kind="portal_code",
                    principal_id=found.id,
                    succeeded=True,
                    remote=remote,
                    at=now,
                )
                return _open_session(
                    tx, tenant_id=tenant_id, kind=SessionKind.PORTAL, principal_id=found.id, at=now
                )
        if latest is not None:
            tx.execute(
                update(portal_codes)
                .where(portal_codes.c.tenant_id == tenant_id, portal_codes.c.id == latest.id)
                .values(attempts=portal_codes.c.attempts + 1)
            )
        _attempt(
            tx,
            tenant_id=tenant_id,
            kind="portal_code",
            principal_id=found.id,
            succeeded=False,
            remote=remote,
            at=now,
        )
    raise Unauthorized("login_code_wrong")


def resolve_portal_session(*, db: Database, clock: Clock, token: str) -> PortalSession | None:
    """The portal session of a cookie's token, or None."""
    if not token or len(token) > 100:
        return None
    s = console_sessions
    with db.read() as tx:
        row = tx.execute(
            select(
                s.c.id,
                s.c.tenant_id,
                s.c.csrf_token,
                s.c.created_at,
                s.c.last_seen_at,
                members.c.id.label("member_id"),
                members.c.name.label("member_name"),
                portal_credentials.c.password_hash,
                tenants.c.name.label("tenant_name"),
                tenant_settings.c.time_zone,
            )
            .select_from(
                s.join(
                    members,
                    and_(members.c.tenant_id == s.c.tenant_id, members.c.id == s.c.principal_id),
                )
                .outerjoin(
                    portal_credentials,
                    and_(
                        portal_credentials.c.tenant_id == s.c.tenant_id,
                        portal_credentials.c.member_id == s.c.principal_id,
                    ),
                )
                .join(tenants, tenants.c.tenant_id == s.c.tenant_id)
                .join(tenant_settings, tenant_settings.c.tenant_id == s.c.tenant_id)
            )
            .where(
                s.c.token_hash == token_hash(token),
                s.c.kind == SessionKind.PORTAL.value,
                s.c.revoked_at.is_(None),
                members.c.anonymised_at.is_(None),
            )
        ).first()
    if row is None or not _kept_alive(db, SessionKind.PORTAL, row, clock.now()):
        return None
    return PortalSession(
        session_id=row.id,
        tenant_id=row.tenant_id,
        tenant_name=row.tenant_name,
        time_zone=row.time_zone,
        member_id=row.member_id,
        member_name=row.member_name,
        has_password=row.password_hash is not None,
        csrf_token=row.csrf_token,
    )


def tenant_name(*, db: Database, tenant_id: str) -> str:
    """The tenant's name, for the portal's login page."""
    with db.read() as tx:
        name = tx.execute(
            select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)
        ).scalar_one_or_none()
    if name is None:
        raise NotFound("tenant_not_found", id=tenant_id)
    return str(name)
