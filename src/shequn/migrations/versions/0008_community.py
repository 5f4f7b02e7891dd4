"""communities, venues, groups, staff accounts, rituals, activities and the outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Communities with their members and venues; Dunbar-capped groups (the database refuses a
group past its cap unless it was imported so); staff accounts, their members and the history
of every handover; welcome templates, badges and their awards, certificates and the chronicle;
activities from outside channels (one per external event id) with each member's counts; and
the outbox of messages to send, with the channels that send them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shequn.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=True),
        sa.Column("target_member_id", sa.String(length=40), nullable=True),
        sa.Column("community_id", sa.String(length=40), nullable=True),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("venue_id", sa.String(length=40), nullable=True),
        sa.Column("staff_account_id", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_activities")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_id",
            "external_id",
            name=op.f("uq_activities_tenant_id_source_id_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_activities_tenant_id_group_id_occurred_at"),
        "activities",
        ["tenant_id", "group_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activities_tenant_id_member_id_occurred_at"),
        "activities",
        ["tenant_id", "member_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activities_tenant_id_staff_account_id_occurred_at"),
        "activities",
        ["tenant_id", "staff_account_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_activities_tenant_id_venue_id_occurred_at"),
        "activities",
        ["tenant_id", "venue_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "activity_sources",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("secret_salt", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_activity_sources")),
    )
    op.create_table(
        "badge_awards",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("badge_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("awarded_by", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("awarded_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "badge_id", "member_id", name=op.f("pk_badge_awards")),
    )
    op.create_index(
        op.f("ix_badge_awards_tenant_id_member_id"),
        "badge_awards",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "badges",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column(
            "criteria",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_badges")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_badges_tenant_id_name")),
    )
    op.create_table(
        "certificates",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("holder_name", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=80), nullable=False),
        sa.Column("tier", sa.String(length=80), nullable=True),
        sa.Column("territory", sa.String(length=80), nullable=True),
        sa.Column("citation", sa.String(length=200), nullable=True),
        sa.Column("valid_from", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("tenant_id", "serial", name=op.f("uq_certificates_tenant_id_serial")),
    )
    op.create_index(
        op.f("ix_certificates_tenant_id_member_id"),
        "certificates",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "chronicle_entries",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("milestone_key", sa.String(length=60), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("occurred_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_chronicle_entries")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "milestone_key",
            name=op.f("uq_chronicle_entries_tenant_id_community_id_milestone_key"),
        ),
    )
    op.create_index(
        op.f("ix_chronicle_entries_tenant_id_community_id_occurred_at"),
        "chronicle_entries",
        ["tenant_id", "community_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "communities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("target_segment", sa.String(length=200), nullable=False),
        sa.Column("mission", sa.String(length=500), nullable=False),
        sa.Column("vehicle", sa.String(length=200), nullable=False),
        sa.Column("member_title", sa.String(length=40), nullable=False),
        sa.Column("symbol", sa.String(length=80), nullable=False),
        sa.Column("group_name_pattern", sa.String(length=60), nullable=False),
        sa.Column("size_class", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=True),
        sa.Column("join_code", sa.String(length=24), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("next_group_number", sa.Integer(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "member_count >= 0 AND next_group_number >= 1", name=op.f("ck_communities_counts")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_communities")),
        sa.UniqueConstraint(
            "tenant_id", "join_code", name=op.f("uq_communities_tenant_id_join_code")
        ),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_communities_tenant_id_name")),
    )
    op.create_table(
        "community_members",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("region", sa.String(length=40), nullable=True),
        sa.Column("placed_by", sa.String(length=16), nullable=True),
        sa.Column("joined_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "community_id", "member_id", name=op.f("pk_community_members")
        ),
    )
    op.create_index(
        op.f("ix_community_members_tenant_id_group_id"),
        "community_members",
        ["tenant_id", "group_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_community_members_tenant_id_member_id"),
        "community_members",
        ["tenant_id", "member_id"],
        unique=False,
    )
    op.create_table(
        "groups",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("size_class", sa.Integer(), nullable=False),
        sa.Column("cap", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=True),
        sa.Column("interest", sa.String(length=40), nullable=True),
        sa.Column("staff_account_id", sa.String(length=40), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=True),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=True),
        sa.Column("split_from", sa.String(length=40), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size >= 0 AND (size <= cap OR imported)", name=op.f("ck_groups_size")),
        sa.CheckConstraint(
            "size_class IN (5, 15, 35, 150) AND cap >= 1", name=op.f("ck_groups_cap")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_groups")),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "external_id",
            name=op.f("uq_groups_tenant_id_community_id_external_id"),
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "community_id",
            "number",
            name=op.f("uq_groups_tenant_id_community_id_number"),
        ),
    )
    op.create_index(
        op.f("ix_groups_tenant_id_staff_account_id"),
        "groups",
        ["tenant_id", "staff_account_id"],
        unique=False,
    )
    op.create_table(
        "handover_items",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("handover_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("from_account_id", sa.String(length=40), nullable=False),
        sa.Column("to_account_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=True),
        sa.Column("call_no", sa.Integer(), nullable=True),
        sa.Column("requested_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("not_before", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_handover_items")),
    )
    op.create_index(
        op.f("ix_handover_items_tenant_id_handover_id_status"),
        "handover_items",
        ["tenant_id", "handover_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_handover_items_tenant_id_subject_id_requested_at"),
        "handover_items",
        ["tenant_id", "subject_id", "requested_at"],
        unique=False,
    )
    op.create_table(
        "handovers",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("from_account_id", sa.String(length=40), nullable=False),
        sa.Column("fallback_account_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_call", sa.Integer(), nullable=False),
        sa.Column("started_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_handovers")),
    )
    op.create_index(
        op.f("ix_handovers_tenant_id_from_account_id"),
        "handovers",
        ["tenant_id", "from_account_id"],
        unique=False,
    )
    op.create_table(
        "member_activity_facts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "member_id", "kind", name=op.f("pk_member_activity_facts")
        ),
    )
    op.create_table(
        "outbox_channels",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("adapter", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret_salt", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox_channels")),
    )
    op.create_table(
        "outbox_messages",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("adapter", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("staff_account_id", sa.String(length=40), nullable=True),
        sa.Column("member_id", sa.String(length=40), nullable=True),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("body", sa.String(length=4000), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("finished_by", sa.String(length=80), nullable=True),
        sa.Column("finished_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint(
            "tenant_id", "dedupe_key", name=op.f("uq_outbox_messages_tenant_id_dedupe_key")
        ),
    )
    op.create_index(
        op.f("ix_outbox_messages_tenant_id_staff_account_id_status"),
        "outbox_messages",
        ["tenant_id", "staff_account_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_outbox_messages_tenant_id_status_adapter_next_attempt_at"),
        "outbox_messages",
        ["tenant_id", "status", "adapter", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "staff_accounts",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("persona", sa.String(length=80), nullable=False),
        sa.Column("operator", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=True),
        sa.Column("region", sa.String(length=40), nullable=True),
        sa.Column("friend_cap", sa.Integer(), nullable=False),
        sa.Column("daily_add_limit", sa.Integer(), nullable=False),
        sa.Column("work_start", sa.Integer(), nullable=False),
        sa.Column("work_end", sa.Integer(), nullable=False),
        sa.Column("backup_account_id", sa.String(length=40), nullable=True),
        sa.Column("outbox_channel_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("adds_day", sa.String(length=10), nullable=True),
        sa.Column("adds_today", sa.Integer(), nullable=False),
        sa.Column("last_assigned_at", shequn.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("assign_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "member_count >= 0 AND adds_today >= 0 AND friend_cap >= 1",
            name=op.f("ck_staff_accounts_counts"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_accounts")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_staff_accounts_tenant_id_name")),
    )
    op.create_table(
        "staff_assignments",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("staff_account_id", sa.String(length=40), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=True),
        sa.Column("assigned_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id", name=op.f("pk_staff_assignments")),
    )
    op.create_index(
        op.f("ix_staff_assignments_tenant_id_staff_account_id"),
        "staff_assignments",
        ["tenant_id", "staff_account_id"],
        unique=False,
    )
    op.create_table(
        "venues",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("external_id", sa.String(length=80), nullable=True),
        sa.Column("platform_limit", sa.Integer(), nullable=True),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_venues")),
        sa.UniqueConstraint(
            "tenant_id", "community_id", "name", name=op.f("uq_venues_tenant_id_community_id_name")
        ),
    )
    op.create_table(
        "welcome_templates",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", shequn.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_welcome_templates")),
    )
    op.create_index(
        op.f("ix_welcome_templates_tenant_id_trigger_community_id"),
        "welcome_templates",
        ["tenant_id", "trigger", "community_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_welcome_templates_tenant_id_trigger_community_id"), table_name="welcome_templates"
    )
    op.drop_table("welcome_templates")
    op.drop_table("venues")
    op.drop_index(
        op.f("ix_staff_assignments_tenant_id_staff_account_id"), table_name="staff_assignments"
    )
    op.drop_table("staff_assignments")
    op.drop_table("staff_accounts")
    op.drop_index(
        op.f("ix_outbox_messages_tenant_id_status_adapter_next_attempt_at"),
        table_name="outbox_messages",
    )
    op.drop_index(
        op.f("ix_outbox_messages_tenant_id_staff_account_id_status"), table_name="outbox_messages"
    )
    op.drop_table("outbox_messages")
    op.drop_table("outbox_channels")
    op.drop_table("member_activity_facts")
    op.drop_index(op.f("ix_handovers_tenant_id_from_account_id"), table_name="handovers")
    op.drop_table("handovers")
    op.drop_index(
        op.f("ix_handover_items_tenant_id_subject_id_requested_at"), table_name="handover_items"
    )
    op.drop_index(
        op.f("ix_handover_items_tenant_id_handover_id_status"), table_name="handover_items"
    )
    op.drop_table("handover_items")
    op.drop_index(op.f("ix_groups_tenant_id_staff_account_id"), table_name="groups")
    op.drop_table("groups")
    op.drop_index(op.f("ix_community_members_tenant_id_member_id"), table_name="community_members")
    op.drop_index(op.f("ix_community_members_tenant_id_group_id"), table_name="community_members")
    op.drop_table("community_members")
    op.drop_table("communities")
    op.drop_index(
        op.f("ix_chronicle_entries_tenant_id_community_id_occurred_at"),
        table_name="chronicle_entries",
    )
    op.drop_table("chronicle_entries")
    op.drop_index(op.f("ix_certificates_tenant_id_member_id"), table_name="certificates")
    op.drop_table("certificates")
    op.drop_table("badges")
    op.drop_index(op.f("ix_badge_awards_tenant_id_member_id"), table_name="badge_awards")
    op.drop_table("badge_awards")
    op.drop_table("activity_sources")
    op.drop_index(op.f("ix_activities_tenant_id_venue_id_occurred_at"), table_name="activities")
    op.drop_index(
        op.f("ix_activities_tenant_id_staff_account_id_occurred_at"), table_name="activities"
    )
    op.drop_index(op.f("ix_activities_tenant_id_member_id_occurred_at"), table_name="activities")
    op.drop_index(op.f("ix_activities_tenant_id_group_id_occurred_at"), table_name="activities")
    op.drop_table("activities")
