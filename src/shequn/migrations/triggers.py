"""Rules the database keeps itself, whatever code path writes: versions that move on every
update (a copy that relies on one is known stale), plans that never change once written, and
no frozen wallet below zero. Installed by migration 0005, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

VERSIONED = ("tenant_settings", "products", "members")
PLAN_FIELDS = (
    "tenant_id",
    "id",
    "version",
    "mode",
    "depth",
    "peer_bonus_bp",
    "signup_reward_fen",
    "qualification_sku",
    "team_volume_bonus_bp",
    "release",
    "tier_rates",
)
PENDING_SUFFIX = ".pd"  # shequn.ledger.rules: the id of a member's frozen wallet ends so

_POSTGRES = [
    """CREATE FUNCTION shequn_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$""",
    *[
        f"""CREATE TRIGGER {table}_version BEFORE UPDATE ON {table}
        FOR EACH ROW EXECUTE FUNCTION shequn_next_version()"""
        for table in VERSIONED
    ],
    """CREATE FUNCTION shequn_tiers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE tenant text;
    BEGIN
        IF TG_OP = 'DELETE' THEN tenant := OLD.tenant_id; ELSE tenant := NEW.tenant_id; END IF;
        UPDATE tenant_settings SET tiers_version = tiers_version + 1 WHERE tenant_id = tenant;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER tiers_version AFTER INSERT OR UPDATE OR DELETE ON tiers
    FOR EACH ROW EXECUTE FUNCTION shequn_tiers_changed()""",
    """CREATE FUNCTION shequn_tier_price_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE tenant text; product text;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            tenant := OLD.tenant_id; product := OLD.product_id;
        ELSE
            tenant := NEW.tenant_id; product := NEW.product_id;
        END IF;
        UPDATE products SET version = version WHERE tenant_id = tenant AND id = product;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER product_tier_prices_version AFTER INSERT OR UPDATE OR DELETE
    ON product_tier_prices FOR EACH ROW EXECUTE FUNCTION shequn_tier_price_changed()""",
    f"""CREATE FUNCTION shequn_plan_written() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF ({", ".join("NEW." + f for f in PLAN_FIELDS)})
            IS DISTINCT FROM ({", ".join("OLD." + f for f in PLAN_FIELDS)}) THEN
            RAISE EXCEPTION 'a commission plan never changes once written'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER commission_plans_written BEFORE UPDATE ON commission_plans
    FOR EACH ROW EXECUTE FUNCTION shequn_plan_written()""",
    """CREATE FUNCTION shequn_rule_written() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'a commission rule never changes once written'
            USING ERRCODE = 'check_violation';
    END $$""",
    """CREATE TRIGGER commission_rules_written BEFORE UPDATE OR DELETE ON commission_rules
    FOR EACH ROW EXECUTE FUNCTION shequn_rule_written()""",
    """CREATE FUNCTION shequn_pending_not_negative() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT sum(amount) FROM postings
            WHERE tenant_id = NEW.tenant_id AND account_id = NEW.account_id) < 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation',
                MESSAGE = 'frozen wallet ' || NEW.account_id || ' would go below zero';
        END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER postings_pending_not_negative AFTER INSERT ON postings
    FOR EACH ROW WHEN (NEW.amount < 0 AND right(NEW.account_id, 3) = '{PENDING_SUFFIX}')
    EXECUTE FUNCTION shequn_pending_not_negative()""",
]

_SQLITE = [
    # An AFTER trigger, as SQLite's cannot change the row being written; its own UPDATE does
    # not fire it again (recursive triggers are off).
    *[
        f"""CREATE TRIGGER {table}_version AFTER UPDATE ON {table} FOR EACH ROW BEGIN
        UPDATE {table} SET version = OLD.version + 1 WHERE rowid = NEW.rowid; END"""
        for table in VERSIONED
    ],
    *[
        f"""CREATE TRIGGER tiers_version_{op.lower()} AFTER {op} ON tiers FOR EACH ROW BEGIN
        UPDATE tenant_settings SET tiers_version = tiers_version + 1
        WHERE tenant_id = {row}.tenant_id; END"""
        for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ],
    *[
        f"""CREATE TRIGGER product_tier_prices_version_{op.lower()} AFTER {op}
        ON product_tier_prices FOR EACH ROW BEGIN
        UPDATE products SET version = version
        WHERE tenant_id = {row}.tenant_id AND id = {row}.product_id; END"""
        for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ],
    f"""CREATE TRIGGER commission_plans_written BEFORE UPDATE ON commission_plans
    FOR EACH ROW WHEN {" OR ".join(f"NEW.{f} IS NOT OLD.{f}" for f in PLAN_FIELDS)} BEGIN
    SELECT RAISE(ABORT, 'a commission plan never changes once written'); END""",
    """CREATE TRIGGER commission_rules_updated BEFORE UPDATE ON commission_rules BEGIN
    SELECT RAISE(ABORT, 'a commission rule never changes once written'); END""",
    """CREATE TRIGGER commission_rules_deleted BEFORE DELETE ON commission_rules BEGIN
    SELECT RAISE(ABORT, 'a commission rule never changes once written'); END""",
    f"""CREATE TRIGGER postings_pending_not_negative AFTER INSERT ON postings
    FOR EACH ROW WHEN NEW.amount < 0 AND substr(NEW.account_id, -3) = '{PENDING_SUFFIX}' BEGIN
    SELECT RAISE(ABORT, 'frozen wallet would go below zero')
    WHERE (SELECT sum(amount) FROM postings
           WHERE tenant_id = NEW.tenant_id AND account_id = NEW.account_id) < 0; END""",
]

_DROP_POSTGRES = [
    "DROP TRIGGER IF EXISTS postings_pending_not_negative ON postings",
    "DROP TRIGGER IF EXISTS commission_rules_written ON commission_rules",
    "DROP TRIGGER IF EXISTS commission_plans_written ON commission_plans",
    "DROP TRIGGER IF EXISTS product_tier_prices_version ON product_tier_prices",
    "DROP TRIGGER IF EXISTS tiers_version ON tiers",
    *[f"DROP TRIGGER IF EXISTS {table}_version ON {table}" for table in VERSIONED],
    "DROP FUNCTION IF EXISTS shequn_pending_not_negative()",
    "DROP FUNCTION IF EXISTS shequn_rule_written()",
    "DROP FUNCTION IF EXISTS shequn_plan_written()",
    "DROP FUNCTION IF EXISTS shequn_tier_price_changed()",
    "DROP FUNCTION IF EXISTS shequn_tiers_changed()",
    "DROP FUNCTION IF EXISTS shequn_next_version()",
]

SQLITE_TRIGGERS = (
    *[f"{table}_version" for table in VERSIONED],
    "tiers_version_insert",
    "tiers_version_update",
    "tiers_version_delete",
    "product_tier_prices_version_insert",
    "product_tier_prices_version_update",
    "product_tier_prices_version_delete",
    "commission_plans_written",
    "commission_rules_updated",
    "commission_rules_deleted",
    "postings_pending_not_negative",
)


@contextmanager
def suspended(conn: Connection) -> Iterator[None]:
    """For a migration that rebuilds tables (SQLite rebuilds a table to alter it, and a rebuilt
    table loses its triggers): the triggers are removed first and installed again after."""
    remove(conn)
    yield
    install(conn)


def install(conn: Connection) -> None:
    for statement in _POSTGRES if conn.dialect.name == "postgresql" else _SQLITE:
        conn.exec_driver_sql(statement)


def remove(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        drops = _DROP_POSTGRES
    else:
        drops = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    for statement in drops:
        conn.exec_driver_sql(statement)
