"""The community tables: communities and their members, venues, Dunbar-capped groups, the
staff-account matrix and its handovers, rituals, activities and the outbox."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from shequn.db import Id, JsonType, UTCDateTime, metadata

communities = Table(
    "communities",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("target_segment", String(200), nullable=False),  # 人
    Column("mission", String(500), nullable=False),  # 命
    Column("vehicle", String(200), nullable=False),  # 器: the product or idea
    Column("member_title", String(40), nullable=False),  # 仪: what members call themselves
    Column("symbol", String(80), nullable=False),
    Column("group_name_pattern", String(60), nullable=False),
    Column("size_class", Integer, nullable=False),  # of the groups it opens
    Column("venue_id", Id, nullable=True),  # where its new groups are opened
    Column("join_code", String(24), nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("next_group_number", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "name"),
    UniqueConstraint("tenant_id", "join_code"),
    CheckConstraint("member_count >= 0 AND next_group_number >= 1", name="counts"),
)

community_members = Table(
    "community_members",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("community_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("role", String(16), nullable=False),
    Column("group_id", Id, nullable=True),  # the one group of the community it is placed in
    Column("region", String(40), nullable=True),
    Column("placed_by", String(16), nullable=True),  # the placement policy
    Column("joined_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "community_id", "member_id"),
    Index(None, "tenant_id", "group_id"),
    Index(None, "tenant_id", "member_id"),
)

venues = Table(
    "venues",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("role", String(24), nullable=False),
    Column("external_id", String(80), nullable=True),
    Column("platform_limit", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "community_id", "name"),
)

groups = Table(
    "groups",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=False),
    Column("venue_id", Id, nullable=True),
    Column("number", Integer, nullable=False),
    Column("name", String(80), nullable=False),
    Column("size_class", Integer, nullable=False),
    Column("cap", Integer, nullable=False),  # min(size class, the venue's platform limit)
    Column("size", Integer, nullable=False),
    # What placement policies match on (a group of a region, an interest, a staff account
    # who owns it, a lifecycle stage); null when the group is for anyone.
    Column("region", String(40), nullable=True),
    Column("interest", String(40), nullable=True),
    Column("staff_account_id", Id, nullable=True),
    Column("lifecycle_stage", String(16), nullable=True),
    Column("imported", Boolean, nullable=False),  # may be over its cap (flagged), never grows
    Column("external_id", String(80), nullable=True),
    Column("split_from", Id, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "community_id", "number"),
    UniqueConstraint("tenant_id", "community_id", "external_id"),
    Index(None, "tenant_id", "staff_account_id"),
    CheckConstraint("size_class IN (5, 15, 35, 150) AND cap >= 1", name="cap"),
    # The database itself refuses a placement past the cap, whatever code path writes.
    CheckConstraint("size >= 0 AND (size <= cap OR imported)", name="size"),
)

staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("persona", String(80), nullable=False),  # e.g. 宝妈 IP
    Column("operator", String(80), nullable=False),  # the person who runs it
    Column("channel", String(16), nullable=False),
    Column("external_id", String(80), nullable=True),  # WeChat id or WeCom userid
    Column("region", String(40), nullable=True),
    Column("friend_cap", Integer, nullable=False),
    Column("daily_add_limit", Integer, nullable=False),
    Column("work_start", Integer, nullable=False),  # minutes of the local day
    Column("work_end", Integer, nullable=False),
    Column("backup_account_id", Id, nullable=True),
    Column("outbox_channel_id", Id, nullable=True),
    Column("status", String(16), nullable=False),  # active, leaving, left
    Column("member_count", Integer, nullable=False),
    Column("adds_day", String(10), nullable=True),  # the local day adds_today counts
    Column("adds_today", Integer, nullable=False),
    Column("last_assigned_at", UTCDateTime(), nullable=True),
    # Counts up across the tenant's accounts at every assignment: round robin's order.
    Column("assign_seq", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "name"),
    CheckConstraint("member_count >= 0 AND adds_today >= 0 AND friend_cap >= 1", name="counts"),
)

staff_assignments = Table(
    "staff_assignments",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("staff_account_id", Id, nullable=False),
    Column("via", String(16), nullable=False),  # a policy, add, handover
    Column("state", String(30), nullable=True),  # the contact-me code's state, if added so
    Column("assigned_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id"),
    Index(None, "tenant_id", "staff_account_id"),
)

handovers = Table(
    "handovers",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("from_account_id", Id, nullable=False),
    Column("fallback_account_id", Id, nullable=True),
    Column("status", String(16), nullable=False),  # open, done
    Column("next_call", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "from_account_id"),
)

# Every transfer asked for or held back, kept: the history of who looked after whom.
handover_items = Table(
    "handover_items",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("handover_id", Id, nullable=False),
    Column("kind", String(8), nullable=False),  # member, group
    Column("subject_id", Id, nullable=False),
    Column("from_account_id", Id, nullable=False),
    Column("to_account_id", Id, nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(24), nullable=True),
    Column("call_no", Integer, nullable=True),
    Column("requested_at", UTCDateTime(), nullable=True),
    Column("due_at", UTCDateTime(), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("not_before", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "handover_id", "status"),
    Index(None, "tenant_id", "subject_id", "requested_at"),
)

welcome_templates = Table(
    "welcome_templates",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=True),  # null: every community
    Column("trigger", String(16), nullable=False),
    Column("body", String(1000), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "trigger", "community_id"),
)

badges = Table(
    "badges",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("description", String(500), nullable=False),
    Column("kind", String(8), nullable=False),  # badge, title
    Column("criteria", JsonType, nullable=True),  # null: awarded by hand only
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "name"),
)

badge_awards = Table(
    "badge_awards",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("badge_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("awarded_by", String(80), nullable=False),  # "criteria" or the actor
    Column("reason", String(200), nullable=True),
    Column("awarded_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "badge_id", "member_id"),
    Index(None, "tenant_id", "member_id"),
)

certificates = Table(
    "certificates",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("serial", String(16), nullable=False),
    Column("member_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("holder_name", String(80), nullable=False),  # as it was when issued
    Column("title", String(80), nullable=False),
    Column("tier", String(80), nullable=True),
    Column("territory", String(80), nullable=True),
    Column("citation", String(200), nullable=True),
    Column("valid_from", UTCDateTime(), nullable=False),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoke_reason", String(200), nullable=True),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "serial"),
    Index(None, "tenant_id", "member_id"),
)

chronicle_entries = Table(
    "chronicle_entries",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("community_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # milestone, manual
    Column("milestone_key", String(60), nullable=True),  # one entry per milestone
    Column("title", String(120), nullable=False),
    Column("body", String(1000), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "community_id", "milestone_key"),
    Index(None, "tenant_id", "community_id", "occurred_at"),
)

activity_sources = Table(
    "activity_sources",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("name", String(80), nullable=False),
    Column("secret_salt", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

activities = Table(
    "activities",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("source_id", String(40), nullable=False),  # "api" or an activity source
    Column("external_id", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("member_id", Id, nullable=True),
    Column("target_member_id", Id, nullable=True),
    Column("community_id", Id, nullable=True),
    Column("group_id", Id, nullable=True),
    Column("venue_id", Id, nullable=True),
    Column("staff_account_id", Id, nullable=True),
    Column("state", String(30), nullable=True),
    Column("value", BigInteger, nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=False),  # event time, as the channel says
    Column("received_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    # A second delivery of an external event is the same activity.
    UniqueConstraint("tenant_id", "source_id", "external_id"),
    Index(None, "tenant_id", "member_id", "occurred_at"),
    Index(None, "tenant_id", "group_id", "occurred_at"),
    Index(None, "tenant_id", "venue_id", "occurred_at"),
    Index(None, "tenant_id", "staff_account_id", "occurred_at"),
)

member_activity_facts = Table(
    "member_activity_facts",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("member_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "member_id", "kind"),
)

outbox_channels = Table(
    "outbox_channels",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("adapter", String(16), nullable=False),
    Column("name", String(80), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret_salt", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("id", Id, nullable=False),
    Column("dedupe_key", String(120), nullable=False),
    Column("adapter", String(16), nullable=False),
    Column("channel_id", Id, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("staff_account_id", Id, nullable=True),
    Column("member_id", Id, nullable=True),
    Column("group_id", Id, nullable=True),
    Column("body", String(4000), nullable=False),
    Column("payload", JsonType, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", UTCDateTime(), nullable=True),  # a deadline (a welcome within 20 s)
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", String(200), nullable=True),
    Column("finished_by", String(80), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index(None, "tenant_id", "status", "adapter", "next_attempt_at"),
    Index(None, "tenant_id", "staff_account_id", "status"),
)
