"""community gatherings, programs, growth path, SOPs, health, complaints

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Calendar events with RSVPs and attendance, check-in programs (participants, check-ins, teams
and scores), the growth path and each member's stage, role models, cadence settings, SOPs,
scheduled posts, the members' monthly message budgets, the copy library with its segmented
text, alerts and complaints.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import shequn.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cadence_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("posts_per_day", sa.Integer(), nullable=False),
        sa.Column("min_gap_minutes", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=False),
        sa.Column("quiet_end", sa.Integer(), nullable=False),
        sa.Column("monthly_budget", sa.Integer(), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_cadence_settings")),
    )
    op.create_table(
        "calendar_events",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=True),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("rrule", sa.String(length=500), nullable=False),
        sa.Column("starts_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("remind_minutes", sa.Integer(), nullable=False),
        sa.Column("attendance_code", sa.String(length=12), nullable=False),
        sa.Column("lecturer_id", sa.String(length=40), nullable=True),
        sa.Column("staff_account_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_calendar_events")),
    )
    op.create_index(
        op.f("ix_calendar_events_tenant_id_lecturer_id"),
        "calendar_events",
        ["tenant_id", "lecturer_id"],
        unique=False,
    )
    op.create_table(
        "community_alerts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_community_alerts")),
        sa.UniqueConstraint(
            "tenant_id", "dedupe_key", name=op.f("uq_community_alerts_tenant_id_dedupe_key")
        ),
    )
    op.create_index(
        op.f("ix_community_alerts_tenant_id_status_created_at"),
        "community_alerts",
        ["tenant_id", "status", "created_at"],
        unique=False,
    )
    op.create_table(
        "complaints",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=True),
        sa.Column("respond_by", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolve_by", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("responded_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=1000), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_complaints")),
    )
    op.create_index(
        op.f("ix_complaints_tenant_id_sku_created_at"),
        "complaints",
        ["tenant_id", "sku", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_complaints_tenant_id_status"), "complaints", ["tenant_id", "status"], unique=False
    )
    op.create_table(
        "copy_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.String(length=4000), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("tokens", sa.String(length=8000), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_copy_entries")),
    )
    op.create_table(
        "event_attendance",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("occurrence_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("via", sa.String(length=12), nullable=False),
        sa.Column("attended_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "event_id", "occurrence_at", "member_id", name=op.f("pk_event_attendance")
        ),
    )
    op.create_index(
        op.f("ix_event_attendance_tenant_id_member_id_attended_at"),
        "event_attendance",
        ["tenant_id", "member_id", "attended_at"],
        unique=False,
    )
    op.create_table(
        "event_rsvps",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("occurrence_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "event_id", "occurrence_at", "member_id", name=op.f("pk_event_rsvps")
        ),
    )
    op.create_table(
        "growth_stages",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column(
            "criteria",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "position", name=op.f("pk_growth_stages")),
    )
    op.create_table(
        "member_growth",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("entered_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name=op.f("pk_member_growth")),
    )
    op.create_index(
        op.f("ix_member_growth_tenant_id_position"),
        "member_growth",
        ["tenant_id", "position"],
        unique=False,
    )
    op.create_table(
        "message_budgets",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", "month", name=op.f("pk_message_budgets")),
    )
    op.create_table(
        "program_checkins",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("submission", sa.String(length=2000), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "program_id", "member_id", "day", name=op.f("pk_program_checkins")
        ),
    )
    op.create_table(
        "program_participants",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=True),
        sa.Column("covered_days", sa.Integer(), nullable=False),
        sa.Column("makeups_used", sa.Integer(), nullable=False),
        sa.Column("freezes_used", sa.Integer(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("best_streak", sa.Integer(), nullable=False),
        sa.Column("milestones_reached", sa.Integer(), nullable=False),
        sa.Column("completed_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("certificate_id", sa.String(length=40), nullable=True),
        sa.Column("joined_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "program_id", "member_id", name=op.f("pk_program_participants")
        ),
    )
    op.create_index(
        op.f("ix_program_participants_tenant_id_member_id"),
        "program_participants",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "program_scores",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "program_id", "round", "team_id", name=op.f("pk_program_scores")
        ),
    )
    op.create_table(
        "program_teams",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("eliminated_round", sa.Integer(), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_program_teams")),
    )
    op.create_index(
        op.f("ix_program_teams_tenant_id_program_id"),
        "program_teams",
        ["tenant_id", "program_id"],
        unique=False,
    )
    op.create_table(
        "programs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("makeup_limit", sa.Integer(), nullable=False),
        sa.Column("freeze_limit", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.String(length=10), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column(
            "milestones",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "lessons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("certificate_title", sa.String(length=80), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_programs")),
    )
    op.create_table(
        "role_models",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=True),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("story", sa.String(length=2000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("featured_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_role_models")),
    )
    op.create_index(
        op.f("ix_role_models_tenant_id_member_id"),
        "role_models",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "scheduled_posts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("sop_id", sa.String(length=40), nullable=True),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("body", sa.String(length=4000), nullable=False),
        sa.Column("send_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("queued_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_scheduled_posts")),
    )
    op.create_index(
        op.f("ix_scheduled_posts_tenant_id_status_send_at"),
        "scheduled_posts",
        ["tenant_id", "status", "send_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_scheduled_posts_tenant_id_target_kind_target_id_send_at"),
        "scheduled_posts",
        ["tenant_id", "target_kind", "target_id", "send_at"],
        unique=False,
    )
    op.create_table(
        "sops",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=80), nullable=False),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("starts_on", sa.String(length=10), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sops")),
    )


def downgrade() -> None:
    op.drop_table("sops")
    op.drop_index(
        op.f("ix_scheduled_posts_tenant_id_target_kind_target_id_send_at"),
        table_name="scheduled_posts",
    )
    op.drop_index(op.f("ix_scheduled_posts_tenant_id_status_send_at"), table_name="scheduled_posts")
    op.drop_table("scheduled_posts")
    op.drop_index(op.f("ix_role_models_tenant_id_member_id"), table_name="role_models")
    op.drop_table("role_models")
    op.drop_table("programs")
    op.drop_index(op.f("ix_program_teams_tenant_id_program_id"), table_name="program_teams")
    op.drop_table("program_teams")
    op.drop_table("program_scores")
    op.drop_index(
        op.f("ix_program_participants_tenant_id_member_id"), table_name="program_participants"
    )
    op.drop_table("program_participants")
    op.drop_table("program_checkins")
    op.drop_table("message_budgets")
    op.drop_index(op.f("ix_member_growth_tenant_id_position"), table_name="member_growth")
    op.drop_table("member_growth")
    op.drop_table("growth_stages")
    op.drop_table("event_rsvps")
    op.drop_index(
        op.f("ix_event_attendance_tenant_id_member_id_attended_at"), table_name="event_attendance"
    )
    op.drop_table("event_attendance")
    op.drop_table("copy_entries")
    op.drop_index(op.f("ix_complaints_tenant_id_status"), table_name="complaints")
    op.drop_index(op.f("ix_complaints_tenant_id_sku_created_at"), table_name="complaints")
    op.drop_table("complaints")
    op.drop_index(
        op.f("ix_community_alerts_tenant_id_status_created_at"), table_name="community_alerts"
    )
    op.drop_table("community_alerts")
    op.drop_index(op.f("ix_calendar_events_tenant_id_lecturer_id"), table_name="calendar_events")
    op.drop_table("calendar_events")
    op.drop_table("cadence_settings")
