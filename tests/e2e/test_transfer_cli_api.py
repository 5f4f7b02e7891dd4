"""`shequn import` / `shequn export` through Typer's runner, and `POST /imports/{kind}` /
`GET /exports/{kind}` over HTTP: exit codes and statuses, the report in both languages, files
in both formats, and refused requests that change nothing."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from shequn.schema import upgrade_database
from tests import factories as f
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect

MEMBERS = (
    "external_id,name,phone,tags,tier,referrer_external_id,registered_at\n"
    "R,根,13900000001,vip,,,2025-03-04\n"
    "S,子,,,,R,\n"
)
BAD_MEMBERS = "external_id,name,phone,referrer_external_id\nA,甲,12345,\nB,乙,,NOBODY\nC,丙,,\n"


# --- the command line --------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    db: Database


@pytest.fixture
def target(db: Database, tmp_path: Path) -> Iterator[Target]:
    """The database the CLI is pointed at: a fresh SQLite file, or the PostgreSQL test database."""
    if db.is_postgres:
        yield Target(db.engine.url.render_as_string(hide_password=False), db)
        return
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    own = Database.from_url(url, pool_size=2)
    yield Target(url, own)
    own.dispose()


def run(*args: str, locale: str = "en", columns: int = 200) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"SHEQUN_LOCALE": locale, "COLUMNS": str(columns)}
    )


def tenant_of(target: Target) -> Ctx:
    result = run(
        "tenant", "create", "导入品牌 import brand", "--database-url", target.url, "--json"
    )
    assert result.exit_code == 0, result.output
    tenant_id = json.loads(result.stdout)["tenant_id"]
    return Ctx(db=target.db, clock=ManualClock(), tenant_id=tenant_id, actor="test")


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False) -> str:
    path = tmp_path / name
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    return str(path)


def test_import_members_from_a_file_excel_wrote(target: Target, tmp_path: Path) -> None:
    ctx = tenant_of(target)
    path = write(tmp_path, "members.csv", MEMBERS.replace("\n", "\r\n"), bom=True)
    args = ("import", "members", path, "-t", ctx.tenant_id, "--database-url", target.url)

    result = run(*args)

    assert result.exit_code == 0, result.output
    assert result.stdout == "2 rows: 2 members created, 0 matched, 1 referral ties made.\n"
    again = run(*args, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {
        "kind": "members",
        "dry_run": False,
        "rows": 2,
        "valid": 2,
        "errors": [],
        "planned": {"created": 0, "matched": 2, "bound": 0},
        "imported": {"created": 0, "matched": 2, "bound": 0},
    }


def test_a_bad_file_is_reported_in_the_chosen_language_and_imports_nothing(
    target: Target, tmp_path: Path
) -> None:
    ctx = tenant_of(target)
    path = write(tmp_path, "bad.csv", BAD_MEMBERS)
    before = contents(target.db, ctx.tenant_id)
    base = ("import", "members", path, "-t", ctx.tenant_id, "--database-url", target.url)

    dry = run(*base, "--dry-run", "--json")
    chinese = run(*base, "--json", locale="zh_CN")
    plain = run(*base)

    assert (dry.exit_code, chinese.exit_code, plain.exit_code) == (1, 1, 1)
    assert json.loads(dry.stdout)["errors"] == [
        {
            "line": 2,
            "field": "phone",
            "code": "phone_invalid",
            "message": "12345 is not a valid phone number.",
        },
        {
            "line": 3,
            "field": "referrer_external_id",
            "code": "referrer_unknown",
            "message": "The referrer NOBODY is neither in this file nor a member.",
        },
    ]
    assert [e["message"] for e in json.loads(chinese.stdout)["errors"]] == [
        "12345 不是有效的手机号。",
        "推荐人 NOBODY 既不在本文件中，也不是现有会员。",
    ]
    assert plain.stderr == "2 of 3 rows have errors; nothing was imported.\n"
    assert "phone_invalid" in plain.stdout
    assert contents(target.db, ctx.tenant_id) == before


def test_a_reason_is_never_cut_in_a_narrow_terminal(target: Target, tmp_path: Path) -> None:
    ctx = tenant_of(target)
    path = write(tmp_path, "bad.csv", BAD_MEMBERS)
    base = ("import", "members", path, "-t", ctx.tenant_id, "--database-url", target.url)
    narrow = run(*base, "--dry-run", columns=60)
    assert narrow.exit_code == 1
    assert "…" not in narrow.stdout
    words = " ".join(narrow.stdout.replace("│", " ").split())
    for word in ("NOBODY", "neither", "member.", "12345", "valid"):
        assert word in words


def test_import_refuses_what_it_cannot_read(target: Target, tmp_path: Path) -> None:
    ctx = tenant_of(target)
    path = write(tmp_path, "m.csv", MEMBERS)
    unknown = run("import", "shops", path, "-t", ctx.tenant_id, "--database-url", target.url)
    missing = run(
        "import", "members", str(tmp_path / "nope.csv"), "-t", ctx.tenant_id,
        "--database-url", target.url,
    )  # fmt: skip
    assert (unknown.exit_code, missing.exit_code) == (2, 2)
    assert unknown.stderr == (
        "import_kind_invalid: Unknown import shops: members, orders or referrals.\n"
    )
    assert missing.stderr.startswith(f"Cannot read {tmp_path / 'nope.csv'}: ")


def test_export_to_standard_output_and_to_a_parquet_file(target: Target, tmp_path: Path) -> None:
    ctx = tenant_of(target)
    path = write(tmp_path, "m.csv", MEMBERS)
    assert (
        run("import", "members", path, "-t", ctx.tenant_id, "--database-url", target.url).exit_code
        == 0
    )
    base = ("export", "members", "-t", ctx.tenant_id, "--database-url", target.url)

    to_stdout = run(*base, "--from", "2020-01-01", "--excel")
    out = tmp_path / "members.parquet"
    to_file = run(*base, "--format", "parquet", "--output", str(out))
    none = run(*base, "--to", "2020-01-01")
    bad = run(*base, "--from", "soon")

    assert to_stdout.exit_code == 0, to_stdout.output
    assert to_stdout.stdout_bytes.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(to_stdout.stdout_bytes.decode("utf-8-sig"))))
    assert [(r["external_id"], r["referrer_external_id"]) for r in rows] == [("R", ""), ("S", "R")]
    assert to_file.exit_code == 0, to_file.output
    assert to_file.stderr == f"Written: {out}\n"
    table = pq.read_table(str(out))
    assert table.column("external_id").to_pylist() == ["R", "S"]
    assert none.stdout.splitlines()[1:] == []
    assert bad.exit_code == 2
    assert bad.stderr.startswith("export_date_invalid: from is not a date or time: soon")


def test_import_orders_on_the_command_line(target: Target, tmp_path: Path) -> None:
    ctx = tenant_of(target)
    f.product(ctx, "TEA", 8_800)
    members = write(tmp_path, "m.csv", MEMBERS)
    orders = write(
        tmp_path,
        "o.csv",
        "external_order_id,buyer_external_id,sku,quantity,paid_at\nO1,S,TEA,2,2025-06-01\n",
    )
    assert (
        run(
            "import", "members", members, "-t", ctx.tenant_id, "--database-url", target.url
        ).exit_code
        == 0
    )
    result = run("import", "orders", orders, "-t", ctx.tenant_id, "--database-url", target.url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 rows: 1 orders created (1 lines), 0 matched.\n"


# --- the API -----------------------------------------------------------------------------------


def post_csv(client: TestClient, path: str, text: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"{API}{path}", content=text.encode(), headers={**headers, "Content-Type": "text/csv"}
    )


def test_an_import_over_http_reports_then_imports(
    client: TestClient, keys: TenantKeys, db: Database
) -> None:
    before = contents(db, keys.tenant_id)
    dry = expect(post_csv(client, "/imports/members?dry_run=true", BAD_MEMBERS, keys.operator), 200)
    refused = post_csv(client, "/imports/members", BAD_MEMBERS, keys.operator)

    assert dry["errors"] == [
        {
            "line": 2,
            "field": "phone",
            "code": "phone_invalid",
            "message": "12345 is not a valid phone number.",
        },
        {
            "line": 3,
            "field": "referrer_external_id",
            "code": "referrer_unknown",
            "message": "The referrer NOBODY is neither in this file nor a member.",
        },
    ]
    assert (dry["rows"], dry["valid"], dry["dry_run"]) == (3, 1, True)
    assert refused.status_code == 422
    body = refused.json()
    assert (body["code"], body["message"]) == (
        "import_rows_invalid",
        "2 of 3 rows have errors; nothing was imported.",
    )
    assert body["report"]["errors"] == dry["errors"]
    assert contents(db, keys.tenant_id) == before

    done = expect(post_csv(client, "/imports/members", MEMBERS, keys.operator), 200)
    assert done["imported"] == {"created": 2, "matched": 0, "bound": 1}
    again = expect(post_csv(client, "/imports/members", MEMBERS, keys.owner), 200)
    assert again["imported"] == {"created": 0, "matched": 2, "bound": 0}
    listed = expect(client.get(f"{API}/members", headers=keys.readonly), 200)["items"]
    assert [(m["external_id"], m["binding_source"]) for m in listed] == [
        ("R", None),
        ("S", "import"),
    ]


def test_an_import_in_chinese(client: TestClient, keys: TenantKeys) -> None:
    headers = {**keys.operator, "Accept-Language": "zh-CN"}
    report = expect(post_csv(client, "/imports/members?dry_run=true", BAD_MEMBERS, headers), 200)
    assert [e["message"] for e in report["errors"]] == [
        "12345 不是有效的手机号。",
        "推荐人 NOBODY 既不在本文件中，也不是现有会员。",
    ]


@pytest.mark.parametrize(
    ("path", "content_type", "who", "expected"),
    [
        ("/imports/members", "application/json", "operator", (415, "import_media_type_invalid")),
        ("/imports/members", None, "operator", (415, "import_media_type_invalid")),
        ("/imports/members", "text/csv", "readonly", (403, "permission_denied")),
        ("/imports/shops", "text/csv", "operator", (422, "validation_error")),
        ("/imports/members?dry_run=maybe", "text/csv", "operator", (422, "validation_error")),
    ],
)
def test_a_refused_import_changes_nothing(
    client: TestClient,
    keys: TenantKeys,
    db: Database,
    path: str,
    content_type: str | None,
    who: str,
    expected: tuple[int, str],
) -> None:
    headers = dict(getattr(keys, who))
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = contents(db, keys.tenant_id)
    response = client.post(f"{API}{path}", content=MEMBERS.encode(), headers=headers)
    assert error_of(response) == expected
    assert contents(db, keys.tenant_id) == before


def test_a_file_above_the_body_limit_is_refused(client: TestClient, keys: TenantKeys) -> None:
    rows = "".join(f"M{i},会员{i},,,,,\n" for i in range(60_000))
    response = post_csv(client, "/imports/members", MEMBERS + rows, keys.operator)
    assert error_of(response) == (413, "body_too_large")


def test_exports_stream_csv_and_parquet_to_any_key(client: TestClient, keys: TenantKeys) -> None:
    expect(post_csv(client, "/imports/members", MEMBERS, keys.operator), 200)

    as_csv = client.get(
        f"{API}/exports/members", params={"from": "2026-01-05"}, headers=keys.readonly
    )
    as_parquet = client.get(
        f"{API}/exports/members", params={"format": "parquet"}, headers=keys.readonly
    )
    for_excel = client.get(f"{API}/exports/ledger?excel=true&to=2026-01-05", headers=keys.owner)

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"] == 'attachment; filename="members.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["external_id"], r["tags"], r["registered_at"]) for r in rows] == [
        ("S", "", "2026-01-05T17:00:00+08:00")
    ]
    assert as_parquet.status_code == 200
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(pa.BufferReader(as_parquet.content))
    assert table.column("external_id").to_pylist() == ["R", "S"]
    assert for_excel.status_code == 200
    assert for_excel.content.startswith(codecs.BOM_UTF8)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("/exports/members?from=soon", (422, "export_date_invalid")),
        ("/exports/members?from=2026-02-01&to=2026-01-01", (422, "export_range_invalid")),
        ("/exports/members?format=xlsx", (422, "validation_error")),
        ("/exports/secrets", (422, "validation_error")),
    ],
)
def test_a_bad_export_is_refused_before_anything_is_sent(
    client: TestClient, keys: TenantKeys, query: str, expected: tuple[int, str]
) -> None:
    assert error_of(client.get(f"{API}{query}", headers=keys.readonly)) == expected


def test_exports_need_a_key(client: TestClient) -> None:
    assert error_of(client.get(f"{API}/exports/members")) == (401, "api_key_missing")
