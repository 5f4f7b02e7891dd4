"""Programs' use cases: create a challenge, course or competition; check in (today, a
make-up day, a freeze, a lesson done) with a submission; the ranking; a competition's teams
and rounds with elimination; the completion certificate.

A check-in's rewards (milestone badges and tags here, points through
`shequn.flows.community_rewards`) are given in its transaction; the certificate of a member
who just completed is issued right after (`issue_completion_certificate`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from shequn.community.common import ids_in, insert_ignoring, view
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import clean_text
from shequn.community.gatherings.rules import check_local_date
from shequn.community.programs.rules import (
    MAX_LESSONS,
    MAX_SUBMISSION,
    CheckinKind,
    Limits,
    Milestone,
    ProgramKind,
    StreakMode,
    check_day,
    check_lesson,
    check_limits,
    day_of,
    eliminate,
    parse_milestones,
    progress,
    rank_key,
    reached,
)
from shequn.community.programs.tables import (
    program_checkins,
    program_participants,
    program_scores,
    program_teams,
    programs,
)
from shequn.community.rituals import certificates
from shequn.community.rituals.badges import award_in
from shequn.community.tables import badges
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.members.tables import member_tags, members
from shequn.tenancy.repo import load_settings

MAX_RANKING = 200


def _require(tx: Connection, tenant_id: str, program_id: str) -> Any:
    row = tx.execute(
        select(programs).where(programs.c.tenant_id == tenant_id, programs.c.id == program_id)
    ).first()
    if row is None:
        raise NotFound("program_not_found", id=program_id)
    return row


def _limits(row: Any) -> Limits:
    return Limits(
        row.days, row.window_days, StreakMode(row.mode), row.makeup_limit, row.freeze_limit
    )


def create_program(
    ctx: Ctx,
    *,
    title: str,
    kind: str = ProgramKind.CHALLENGE.value,
    days: int = 21,
    window_days: int | None = None,
    mode: str = StreakMode.CONSECUTIVE.value,
    makeup_limit: int = 0,
    freeze_limit: int = 0,
    starts_on: date,
    milestones: Sequence[Mapping[str, Any]] = (),
    lessons: Sequence[str] = (),
    certificate_title: str | None = None,
    community_id: str | None = None,
) -> dict[str, Any]:
    """A program. A challenge runs `window_days` local days from `starts_on` and completes at
    `days` (consecutive or cumulative); a course completes when its lessons are done; a
    competition is scored by rounds."""
    clean = clean_text(title, field="title", max_length=120, required=True)
    check_local_date(starts_on, "starts_on")
    try:
        chosen = ProgramKind(kind)
    except ValueError:
        raise InvalidInput("program_kind_invalid", kind=kind[:20]) from None
    lesson_titles = [clean_text(t, field="lessons", max_length=120, required=True) for t in lessons]
    if len(lesson_titles) > MAX_LESSONS:
        raise InvalidInput("program_lessons_invalid", max=MAX_LESSONS)
    if chosen is ProgramKind.COURSE:
        if not lesson_titles:
            raise InvalidInput("program_lessons_invalid", max=MAX_LESSONS)
        days = len(lesson_titles)
        window_days = max(window_days or 0, days)
        mode = StreakMode.CUMULATIVE.value
    limits = check_limits(
        days=days,
        window_days=window_days,
        mode=mode,
        makeup_limit=makeup_limit,
        freeze_limit=freeze_limit,
    )
    parsed = parse_milestones(list(milestones), limits.days)
    cert_title = clean_text(certificate_title, field="certificate_title", max_length=80) or None
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        zone = load_settings(tx, ctx.tenant_id).time_zone
        if community_id is not None:
            require_community(tx, ctx.tenant_id, community_id)
        badge_ids = sorted({m.badge_id for m in parsed if m.badge_id})
        if badge_ids:
            found = set(
                tx.execute(
                    select(badges.c.id).where(
                        badges.c.tenant_id == ctx.tenant_id, badges.c.id.in_(badge_ids)
                    )
                ).scalars()
            )
            if set(badge_ids) - found:
                raise NotFound("badge_not_found", id=sorted(set(badge_ids) - found)[0])
        row: dict[str, Any] = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("prog"),
            "community_id": community_id,
            "kind": chosen.value,
            "title": clean,
            "mode": limits.mode.value,
            "days": limits.days,
            "window_days": limits.window_days,
            "makeup_limit": limits.makeup_limit,
            "freeze_limit": limits.freeze_limit,
            "starts_on": starts_on.isoformat(),
            "time_zone": zone,
            "milestones": [
                {"day": m.day, "badge_id": m.badge_id, "tag": m.tag, "points": m.points}
                for m in parsed
            ],
            "lessons": lesson_titles,
            "certificate_title": cert_title,
            "created_at": now,
        }
        tx.execute(programs.insert().values(row))
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("ProgramCreated", "program", row["id"], {"kind": chosen.value})],
        )
    return view(row)


@dataclass
class CheckedIn:
    program_id: str
    member_id: str
    day: int
    kind: str
    covered: int
    streak: int
    best_streak: int
    completed: bool
    just_completed: bool
    replayed: bool
    missed: list[int]
    makeups_left: int
    freezes_left: int
    milestones: list[Milestone] = field(default_factory=list)
    certificate_id: str | None = None


def _participant(tx: Connection, tenant_id: str, program_id: str, member_id: str) -> Any:
    p = program_participants.c
    return tx.execute(
        select(program_participants).where(
            p.tenant_id == tenant_id, p.program_id == program_id, p.member_id == member_id
        )
    ).first()


def checkin_in(
    tx: Connection,
    *,
    tenant_id: str,
    program_id: str,
    member_id: str,
    kind: str,
    day: int | None,
    submission: str | None,
    now: datetime,
    actor: str,
) -> CheckedIn:
    """A check-in in the caller's transaction: today's, a make-up day, a freeze or a lesson
    done; milestone badges and tags given here (the caller adds the points)."""
    try:
        chosen = CheckinKind(kind)
    except ValueError:
        raise InvalidInput("checkin_kind_invalid", kind=kind[:20]) from None
    text = (submission or "").strip() or None
    if text is not None and len(text) > MAX_SUBMISSION:
        raise InvalidInput("field_too_long", field="submission", max=MAX_SUBMISSION)
    program = _require(tx, tenant_id, program_id)
    require_member(tx, tenant_id, member_id)
    limits = _limits(program)
    is_course = program.kind == ProgramKind.COURSE.value
    if is_course != (chosen is CheckinKind.LESSON):
        raise InvalidInput("checkin_kind_invalid", kind=chosen.value)
    if program.kind == ProgramKind.COMPETITION.value:
        raise Conflict("program_is_competition")
    today = day_of(
        date.fromisoformat(program.starts_on), now.astimezone(ZoneInfo(program.time_zone)).date()
    )
    take(tx, Lock.PROGRAMS)
    p = program_participants.c
    tx.execute(
        insert_ignoring(tx, program_participants, ("tenant_id", "program_id", "member_id")).values(
            tenant_id=tenant_id,
            program_id=program_id,
            member_id=member_id,
            team_id=None,
            covered_days=0,
            makeups_used=0,
            freezes_used=0,
            streak=0,
            best_streak=0,
            milestones_reached=0,
            completed_at=None,
            certificate_id=None,
            joined_at=now,
            updated_at=now,
        )
    )
    me = tx.execute(
        select(program_participants)
        .where(p.tenant_id == tenant_id, p.program_id == program_id, p.member_id == member_id)
        .with_for_update()
    ).one()
    k = program_checkins.c
    done = tx.execute(
        select(k.day, k.kind).where(
            k.tenant_id == tenant_id, k.program_id == program_id, k.member_id == member_id
        )
    ).all()
    covered = {d for d, kd in done if kd != CheckinKind.FREEZE.value}
    frozen = {d for d, kd in done if kd == CheckinKind.FREEZE.value}
    if chosen is CheckinKind.LESSON:
        target = check_lesson(day, len(program.lessons))
        if target in covered:
            return _result(program, me, target, chosen, limits, covered, frozen, today, True)
    else:
        if chosen is CheckinKind.CHECKIN and today in covered | frozen:
            return _result(program, me, today, chosen, limits, covered, frozen, today, True)
        target = check_day(
            chosen,
            day=day,
            today=today,
            limits=limits,
            covered=covered,
            frozen=frozen,
            makeups_used=me.makeups_used,
            freezes_used=me.freezes_used,
        )
    tx.execute(
        program_checkins.insert().values(
            tenant_id=tenant_id,
            program_id=program_id,
            member_id=member_id,
            day=target,
            kind=chosen.value,
            submission=text,
            created_at=now,
        )
    )
    if chosen is CheckinKind.FREEZE:
        frozen.add(target)
    else:
        covered.add(target)
    state = progress(limits, covered=covered, frozen=frozen, today=max(today, 1))
    if is_course:
        state = progress(limits, covered=covered, frozen=frozen, today=limits.window_days)
    milestones = parse_milestones(program.milestones, limits.days)
    passed = reached(milestones, me.covered_days, state.covered)
    just_completed = state.completed and me.completed_at is None
    tx.execute(
        update(program_participants)
        .where(p.tenant_id == tenant_id, p.program_id == program_id, p.member_id == member_id)
        .values(
            covered_days=state.covered,
            makeups_used=me.makeups_used + (chosen is CheckinKind.MAKEUP),
            freezes_used=me.freezes_used + (chosen is CheckinKind.FREEZE),
            streak=state.streak,
            best_streak=state.best_streak,
            milestones_reached=me.milestones_reached + len(passed),
            completed_at=now if just_completed else me.completed_at,
            updated_at=now,
        )
    )
    _give_badges_and_tags(tx, tenant_id, member_id, passed, now, program_id)
    events = [
        Event(
            "ProgramCheckedIn",
            "member",
            member_id,
            {"program_id": program_id, "day": target, "kind": chosen.value},
        )
    ]
    if just_completed:
        events.append(Event("ProgramCompleted", "member", member_id, {"program_id": program_id}))
    record_events(tx, tenant_id=tenant_id, actor=actor, at=now, items=events)
    fresh = _participant(tx, tenant_id, program_id, member_id)
    out = _result(program, fresh, target, chosen, limits, covered, frozen, today, False)
    out.just_completed = just_completed
    out.milestones = passed
    return out


def _result(
    program: Any,
    me: Any,
    day: int,
    kind: CheckinKind,
    limits: Limits,
    covered: set[int],
    frozen: set[int],
    today: int,
    replayed: bool,
) -> CheckedIn:
    state = progress(limits, covered=covered, frozen=frozen, today=max(today, 1))
    return CheckedIn(
        program_id=program.id,
        member_id=me.member_id,
        day=day,
        kind=kind.value,
        covered=int(me.covered_days),
        streak=int(me.streak),
        best_streak=int(me.best_streak),
        completed=me.completed_at is not None,
        just_completed=False,
        replayed=replayed,
        missed=list(state.missed),
        makeups_left=max(0, limits.makeup_limit - int(me.makeups_used)),
        freezes_left=max(0, limits.freeze_limit - int(me.freezes_used)),
        certificate_id=me.certificate_id,
    )


def _give_badges_and_tags(
    tx: Connection,
    tenant_id: str,
    member_id: str,
    passed: Sequence[Milestone],
    now: datetime,
    program_id: str,
) -> None:
    for milestone in passed:
        if milestone.badge_id:
            award_in(
                tx,
                tenant_id=tenant_id,
                badge_id=milestone.badge_id,
                member_id=member_id,
                awarded_by="program",
                reason=f"{program_id}:{milestone.day}",
                at=now,
                actor="system",
                by="program",
            )
        if milestone.tag:
            tx.execute(
                insert_ignoring(tx, member_tags, ("tenant_id", "member_id", "tag")).values(
                    tenant_id=tenant_id, member_id=member_id, tag=milestone.tag[:40]
                )
            )


def issue_completion_certificate(
    ctx: Ctx, *, server_key: str, program_id: str, member_id: str
) -> str | None:
    """The completion certificate (an honour naming the program) of a member who completed
    and has none yet; its id."""
    with ctx.db.read() as tx:
        program = _require(tx, ctx.tenant_id, program_id)
        me = _participant(tx, ctx.tenant_id, program_id, member_id)
    if me is None or me.completed_at is None:
        return None
    if me.certificate_id is not None:
        return str(me.certificate_id)
    issued = certificates.issue_certificate(
        ctx,
        server_key=server_key,
        member_id=member_id,
        kind="honour",
        title=program.certificate_title or program.title,
        citation=program.title,
    )
    p = program_participants.c
    with ctx.db.transaction() as tx:
        take(tx, Lock.PROGRAMS)
        tx.execute(
            update(program_participants)
            .where(
                p.tenant_id == ctx.tenant_id,
                p.program_id == program_id,
                p.member_id == member_id,
                p.certificate_id.is_(None),
            )
            .values(certificate_id=issued["id"])
        )
        stored = _participant(tx, ctx.tenant_id, program_id, member_id)
    return str(stored.certificate_id)


def checked_in_view(item: CheckedIn, points: int) -> dict[str, Any]:
    return {
        "program_id": item.program_id,
        "member_id": item.member_id,
        "day": item.day,
        "kind": item.kind,
        "covered_days": item.covered,
        "streak": item.streak,
        "best_streak": item.best_streak,
        "completed": item.completed,
        "missed_days": item.missed,
        "makeups_left": item.makeups_left,
        "freezes_left": item.freezes_left,
        "milestones_reached": [m.day for m in item.milestones],
        "points_earned": points,
        "certificate_id": item.certificate_id,
        "replayed": item.replayed,
    }


def ranking(ctx: Ctx, *, program_id: str, limit: int = 50) -> dict[str, Any]:
    """The program's ranking: for a competition its teams by score (eliminated last);
    otherwise members, completed first, then covered days and the longer streak."""
    limit = max(1, min(limit, MAX_RANKING))
    with ctx.db.read() as tx:
        program = _require(tx, ctx.tenant_id, program_id)
        if program.kind == ProgramKind.COMPETITION.value:
            t = program_teams.c
            teams = tx.execute(
                select(program_teams).where(
                    t.tenant_id == ctx.tenant_id, t.program_id == program_id
                )
            ).all()
            ordered = sorted(
                teams,
                key=lambda r: (
                    r.eliminated_round is not None,
                    -(r.eliminated_round or 0),
                    -r.score,
                    r.name,
                ),
            )
            return {
                "program_id": program_id,
                "kind": program.kind,
                "items": [
                    {
                        "rank": i + 1,
                        "member_id": None,
                        "name": r.name,
                        "team_id": r.id,
                        "score": int(r.score),
                        "covered_days": 0,
                        "best_streak": 0,
                        "completed": False,
                        "eliminated_round": r.eliminated_round,
                    }
                    for i, r in enumerate(ordered[:limit])
                ],
            }
        p, m = program_participants.c, members.c
        rows = tx.execute(
            select(program_participants, m.name)
            .join(members, (m.tenant_id == p.tenant_id) & (m.id == p.member_id))
            .where(p.tenant_id == ctx.tenant_id, p.program_id == program_id)
        ).all()
    ordered = sorted(
        rows,
        key=lambda r: rank_key(
            int(r.covered_days),
            int(r.best_streak),
            r.completed_at is not None,
            r.joined_at.isoformat(),
        ),
    )
    return {
        "program_id": program_id,
        "kind": program.kind,
        "items": [
            {
                "rank": i + 1,
                "member_id": r.member_id,
                "name": r.name,
                "team_id": r.team_id,
                "score": int(r.covered_days),
                "covered_days": int(r.covered_days),
                "best_streak": int(r.best_streak),
                "completed": r.completed_at is not None,
                "eliminated_round": None,
            }
            for i, r in enumerate(ordered[:limit])
        ],
    }


def create_team(
    ctx: Ctx, *, program_id: str, name: str, member_ids: Sequence[str]
) -> dict[str, Any]:
    """A team of a competition, with its members."""
    clean = clean_text(name, field="name", max_length=80, required=True)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        program = _require(tx, ctx.tenant_id, program_id)
        if program.kind != ProgramKind.COMPETITION.value:
            raise Conflict("program_not_a_competition")
        ids = sorted(set(member_ids))
        if ids:
            m = members.c
            found = set(
                tx.execute(
                    select(m.id).where(m.tenant_id == ctx.tenant_id, ids_in(tx, m.id, ids))
                ).scalars()
            )
            if set(ids) - found:
                raise NotFound("member_not_found", id=sorted(set(ids) - found)[0])
        row = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("team"),
            "program_id": program_id,
            "name": clean,
            "score": 0,
            "eliminated_round": None,
            "created_at": now,
        }
        tx.execute(program_teams.insert().values(row))
        take(tx, Lock.PROGRAMS)
        for member_id in ids:
            statement = insert_ignoring(
                tx, program_participants, ("tenant_id", "program_id", "member_id")
            )
            tx.execute(
                statement.values(
                    tenant_id=ctx.tenant_id,
                    program_id=program_id,
                    member_id=member_id,
                    team_id=row["id"],
                    covered_days=0,
                    makeups_used=0,
                    freezes_used=0,
                    streak=0,
                    best_streak=0,
                    milestones_reached=0,
                    completed_at=None,
                    certificate_id=None,
                    joined_at=now,
                    updated_at=now,
                )
            )
        p = program_participants.c
        if ids:
            tx.execute(
                update(program_participants)
                .where(
                    p.tenant_id == ctx.tenant_id, p.program_id == program_id, p.member_id.in_(ids)
                )
                .values(team_id=row["id"], updated_at=now)
            )
    shown = view(row)
    shown["member_ids"] = ids
    return shown


def score_round(
    ctx: Ctx, *, program_id: str, round_no: int, scores: Mapping[str, int], eliminate_count: int = 0
) -> dict[str, Any]:
    """A round's scores of the teams still in, and the lowest `eliminate_count` teams out."""
    if not 1 <= round_no <= 100:
        raise InvalidInput("round_invalid")
    if any(not 0 <= s <= 10**9 for s in scores.values()):
        raise InvalidInput("score_invalid")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        program = _require(tx, ctx.tenant_id, program_id)
        if program.kind != ProgramKind.COMPETITION.value:
            raise Conflict("program_not_a_competition")
        take(tx, Lock.PROGRAMS)
        t = program_teams.c
        teams = {
            r.id: r
            for r in tx.execute(
                select(program_teams)
                .where(t.tenant_id == ctx.tenant_id, t.program_id == program_id)
                .order_by(t.id)
                .with_for_update()
            ).all()
        }
        alive = [tid for tid, r in teams.items() if r.eliminated_round is None]
        unknown = sorted(set(scores) - set(alive))
        if unknown:
            raise NotFound("team_not_found", id=unknown[0])
        s = program_scores.c
        taken = tx.execute(
            select(func.count()).where(
                s.tenant_id == ctx.tenant_id, s.program_id == program_id, s.round == round_no
            )
        ).scalar_one()
        if taken:
            raise Conflict("round_already_scored", round=round_no)
        if scores:
            tx.execute(
                program_scores.insert(),
                [
                    {
                        "tenant_id": ctx.tenant_id,
                        "program_id": program_id,
                        "round": round_no,
                        "team_id": tid,
                        "score": score,
                        "created_at": now,
                    }
                    for tid, score in sorted(scores.items())
                ],
            )
        totals = {tid: int(teams[tid].score) + scores.get(tid, 0) for tid in alive}
        out = eliminate(totals, alive, eliminate_count)
        for tid in alive:
            tx.execute(
                update(program_teams)
                .where(t.tenant_id == ctx.tenant_id, t.id == tid)
                .values(score=totals[tid], eliminated_round=round_no if tid in out else None)
            )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "CompetitionRoundScored",
                    "program",
                    program_id,
                    {"round": round_no, "eliminated": out},
                )
            ],
        )
    return {"program_id": program_id, "round": round_no, "eliminated": out, "totals": totals}


def member_ranking_rows(ctx: Ctx, *, program_id: str) -> list[dict[str, Any]]:
    """Every row of the ranking (for an export)."""
    return list(ranking(ctx, program_id=program_id, limit=MAX_RANKING)["items"])
