"""Programs, their participants, each day's check-in (or lesson done) and the teams of a
competition with their scores per round."""

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from shequn.db import Id, JsonType, UTCDateTime, metadata

programs = Table(
    "programs",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=True),
    Column("kind", String(16), nullable=False),  # challenge, course, competition
    Column("title", String(120), nullable=False),
    Column("mode", String(16), nullable=False),  # consecutive, cumulative
    Column("days", Integer, nullable=False),  # days to complete (lessons of a course)
    Column("window_days", Integer, nullable=False),  # days the program runs
    Column("makeup_limit", Integer, nullable=False),
    Column("freeze_limit", Integer, nullable=False),
    Column("starts_on", String(10), nullable=False),  # the tenant's local date of day 1
    Column("time_zone", String(64), nullable=False),
    Column("milestones", JsonType, nullable=False),
    Column("lessons", JsonType, nullable=False),
    Column("certificate_title", String(80), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

program_participants = Table(
    "program_participants",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("program_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("team_id", Id, nullable=True),
    Column("covered_days", Integer, nullable=False),  # checked in or made up
    Column("makeups_used", Integer, nullable=False),
    Column("freezes_used", Integer, nullable=False),
    Column("streak", Integer, nullable=False),
    Column("best_streak", Integer, nullable=False),
    Column("milestones_reached", Integer, nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("certificate_id", Id, nullable=True),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "program_id", "member_id"),
    Index(None, "tenant_id", "member_id"),
)

program_checkins = Table(
    "program_checkins",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("program_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("day", Integer, nullable=False),  # day of the program, or lesson number
    Column("kind", String(12), nullable=False),  # checkin, makeup, freeze, lesson
    Column("submission", String(2000), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "program_id", "member_id", "day"),
)

program_teams = Table(
    "program_teams",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("program_id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("score", Integer, nullable=False),  # the sum over its rounds
    Column("eliminated_round", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "program_id"),
)

program_scores = Table(
    "program_scores",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("program_id", Id, nullable=False),
    Column("round", Integer, nullable=False),
    Column("team_id", Id, nullable=False),
    Column("score", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "program_id", "round", "team_id"),
)
