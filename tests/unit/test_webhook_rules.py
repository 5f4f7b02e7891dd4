"""Webhook rules: signatures (against vectors computed with openssl), the retry schedule, the
subject ordering rule, and what an endpoint may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shequn.errors import InvalidInput
from shequn.webhooks import rules
from shequn.webhooks.rules import DeliveryState, DeliveryStatus, RetryPolicy

BODY = b'{"id":"evt_1","type":"OrderPaid"}'
SECRET = "whsec_c2VjcmV0"
# printf '%s' '1700000000.{"id":"evt_1","type":"OrderPaid"}' | openssl dgst -sha256 -hmac ...
VECTOR = "ac693b088f63cedbf84b968f6f9a073493d43aafdbd6ec42d757d3500dc1992f"
T = 1_700_000_000


def test_signature_matches_a_known_vector() -> None:
    assert rules.signature(SECRET, T, BODY) == VECTOR
    assert rules.signature_header([SECRET], T, BODY) == f"t={T},v1={VECTOR}"


def test_the_header_carries_one_signature_per_secret_current_first() -> None:
    other = rules.signature("whsec_old", T, BODY)
    assert rules.signature_header([SECRET, "whsec_old"], T, BODY) == (
        f"t={T},v1={VECTOR},v1={other}"
    )


def test_secret_derivation_matches_a_known_vector() -> None:
    # printf 'shequn.webhook-secret\0tn_1\0whe_1\0salt-1' | openssl dgst -sha256
    #   -hmac server-key -binary | base64url without padding
    secret = rules.signing_secret(
        "server-key", tenant_id="tn_1", endpoint_id="whe_1", salt="salt-1"
    )
    assert secret == "whsec_fd5ujKYRl1WrqPnFC0OgfWiTsXU_aU6pP278ot4eOG0"


def test_a_secret_depends_on_key_tenant_endpoint_and_salt() -> None:
    base = {"tenant_id": "tn_1", "endpoint_id": "whe_1", "salt": "s"}
    secrets = {
        rules.signing_secret("k", **base),
        rules.signing_secret("k2", **base),
        rules.signing_secret("k", **{**base, "tenant_id": "tn_2"}),
        rules.signing_secret("k", **{**base, "endpoint_id": "whe_2"}),
        rules.signing_secret("k", **{**base, "salt": "s2"}),
    }
    assert len(secrets) == 5


def test_verification_accepts_the_signed_body_within_the_tolerance() -> None:
    header = rules.signature_header([SECRET], T, BODY)
    assert rules.verify_signature(SECRET, header, BODY, now=T) is True
    assert rules.verify_signature(SECRET, header, BODY, now=T + 300) is True
    assert rules.verify_signature(SECRET, header, BODY, now=T - 300) is True


def test_verification_accepts_any_of_several_signatures() -> None:
    header = rules.signature_header(["whsec_new", SECRET], T, BODY)
    assert rules.verify_signature(SECRET, header, BODY, now=T) is True


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_wrong", BODY, T),  # wrong secret
        (SECRET, BODY.replace(b"OrderPaid", b"OrderPaie"), T),  # tampered body
        (SECRET, BODY + b" ", T),  # one byte more
        (SECRET, BODY, T + 301),  # stale timestamp
        (SECRET, BODY, T - 301),  # from the future
    ],
    ids=["wrong-secret", "tampered", "extra-byte", "stale", "future"],
)
def test_verification_refuses(secret: str, body: bytes, now: int) -> None:
    header = rules.signature_header([SECRET], T, BODY)
    assert rules.verify_signature(secret, header, body, now=now) is False


@pytest.mark.parametrize(
    "header",
    ["", f"v1={VECTOR}", f"t={T}", f"t=abc,v1={VECTOR}", f"t={T},v0={VECTOR}"],
    ids=["empty", "no-timestamp", "no-signature", "bad-timestamp", "other-version"],
)
def test_verification_refuses_a_malformed_header(header: str) -> None:
    assert rules.verify_signature(SECRET, header, BODY, now=T) is False


def test_a_moved_timestamp_breaks_the_signature() -> None:
    header = rules.signature_header([SECRET], T, BODY).replace(f"t={T}", f"t={T + 1}")
    assert rules.verify_signature(SECRET, header, BODY, now=T) is False


# --- retries ------------------------------------------------------------------------------


def test_backoff_doubles_from_ten_seconds_up_to_six_hours() -> None:
    policy = RetryPolicy()
    assert [policy.full_delay(n).total_seconds() for n in range(1, 15)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        5120,
        10240,
        20480,
        21600,
        21600,
    ]
    assert policy.full_delay(0) == timedelta(0)
    assert policy.full_delay(10_000) == timedelta(hours=6)


def test_jitter_takes_off_up_to_half_of_the_delay() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, 0.0) == timedelta(seconds=10)
    assert policy.delay(1, 0.5) == timedelta(seconds=7.5)
    assert policy.delay(1, 0.999999) > timedelta(seconds=5)
    assert policy.delay(3, 1.0) == timedelta(seconds=20)


def test_a_delivery_is_dead_after_sixteen_failures_in_a_row() -> None:
    policy = RetryPolicy()
    assert [policy.gives_up(n) for n in (1, 15, 16, 17)] == [False, False, True, True]
    total = sum((policy.full_delay(n) for n in range(1, 16)), timedelta(0))
    assert total == timedelta(seconds=105_750)  # about 29 hours at most


@pytest.mark.parametrize(
    ("code", "ok"),
    [(200, True), (204, True), (299, True), (301, False), (500, False), (None, False)],
)
def test_only_a_2xx_answer_succeeds(code: int | None, ok: bool) -> None:
    assert rules.succeeded(code) is ok


# --- ordering ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _d(
    id: str,
    event_id: str,
    status: DeliveryStatus = DeliveryStatus.PENDING,
    *,
    subject: str = "ord_1",
    endpoint: str = "whe_1",
    due: datetime = NOW,
    claimed_until: datetime | None = None,
) -> DeliveryState:
    return DeliveryState(
        id=id,
        endpoint_id=endpoint,
        subject_type="order",
        subject_id=subject,
        event_id=event_id,
        status=status,
        next_attempt_at=due,
        claimed_until=claimed_until,
    )


def test_only_the_oldest_undelivered_delivery_of_a_subject_is_due() -> None:
    deliveries = [_d("d2", "evt_2"), _d("d1", "evt_1"), _d("d3", "evt_3")]
    assert rules.due_deliveries(deliveries, NOW) == ["d1"]


def test_an_older_delivery_waiting_for_its_retry_holds_the_younger_back() -> None:
    deliveries = [_d("d1", "evt_1", due=NOW + timedelta(seconds=5)), _d("d2", "evt_2")]
    assert rules.due_deliveries(deliveries, NOW) == []
    assert rules.due_deliveries(deliveries, NOW + timedelta(seconds=5)) == ["d1"]


def test_delivered_and_skipped_ones_let_the_younger_go_and_a_dead_one_does_not() -> None:
    assert rules.due_deliveries(
        [_d("d1", "evt_1", DeliveryStatus.DELIVERED), _d("d2", "evt_2")], NOW
    ) == ["d2"]
    assert rules.due_deliveries(
        [_d("d1", "evt_1", DeliveryStatus.SKIPPED), _d("d2", "evt_2")], NOW
    ) == ["d2"]
    assert (
        rules.due_deliveries([_d("d1", "evt_1", DeliveryStatus.DEAD), _d("d2", "evt_2")], NOW) == []
    )


def test_other_subjects_and_other_endpoints_do_not_wait() -> None:
    deliveries = [
        _d("d1", "evt_1", DeliveryStatus.DEAD),
        _d("d2", "evt_2", subject="ord_2"),
        _d("d3", "evt_3", endpoint="whe_2"),
        _d("d4", "evt_4"),
    ]
    assert rules.due_deliveries(deliveries, NOW) == ["d2", "d3"]


def test_a_claimed_delivery_is_not_due_until_its_claim_ends_and_still_holds_back() -> None:
    deliveries = [_d("d1", "evt_1", claimed_until=NOW + timedelta(minutes=1)), _d("d2", "evt_2")]
    assert rules.due_deliveries(deliveries, NOW) == []
    assert rules.due_deliveries(deliveries, NOW + timedelta(minutes=1)) == ["d1"]


def test_due_deliveries_come_oldest_due_first() -> None:
    deliveries = [
        _d("late", "evt_1", subject="a", due=NOW - timedelta(seconds=1)),
        _d("early", "evt_2", subject="b", due=NOW - timedelta(seconds=9)),
    ]
    assert rules.due_deliveries(deliveries, NOW) == ["early", "late"]


# --- endpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/hook",
        "example.com/hook",
        "http:///no-host",
        "https://exa mple.com/",
        "https://example.com/#frag",
        "https://example.com:99999/",
        "https://example.com:0/",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_urls_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.validate_url(url)
    assert refused.value.code == "webhook_url_invalid"


def test_urls_accepted_are_kept_as_given_less_surrounding_space() -> None:
    assert rules.validate_url(" https://hooks.example.com:8443/in?x=1 ") == (
        "https://hooks.example.com:8443/in?x=1"
    )
    assert rules.validate_url("http://127.0.0.1/h") == "http://127.0.0.1/h"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared (CGNAT)
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "not an address",
    ],
)
def test_private_local_and_special_addresses_are_not_public(address: str) -> None:
    assert rules.is_public_address(address) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_internet_addresses_are_public(address: str) -> None:
    assert rules.is_public_address(address) is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://127.1/h",
        "http://2130706433/h",  # 127.0.0.1 as one number
        "http://0x7f.0.0.1/h",
        "http://[::1]:8080/h",
        "http://[::ffff:169.254.169.254]/latest",
        "http://localhost:8000/h",
        "http://LOCALHOST./h",
        "http://api.localhost/h",
        "https://10.0.0.5/h",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_endpoints_at_private_or_local_hosts_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.check_reachable_host(rules.validate_url(url), allow_private=False)
    assert refused.value.code == "webhook_url_private"
    rules.check_reachable_host(rules.validate_url(url), allow_private=True)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/in", "https://8.8.8.8/h", "https://[2606:4700::1111]/h"]
)
def test_endpoints_at_public_hosts_or_names_pass_the_registration_check(url: str) -> None:
    rules.check_reachable_host(rules.validate_url(url), allow_private=False)


def test_resolved_addresses_that_are_not_public_are_named() -> None:
    assert rules.refused_addresses(["93.184.216.34", "10.0.0.1", "::1"]) == ["10.0.0.1", "::1"]
    assert rules.refused_addresses(["93.184.216.34"]) == []


def test_event_types_are_sorted_without_repeats() -> None:
    assert rules.validate_event_types(["OrderPaid", "MemberRegistered", "OrderPaid"]) == [
        "MemberRegistered",
        "OrderPaid",
    ]
    assert rules.validate_event_types(["*", "*"]) == ["*"]


@pytest.mark.parametrize(
    ("types", "code"),
    [
        ([], "webhook_event_types_empty"),
        (["OrderPayed"], "webhook_event_type_unknown"),
        (["*", "OrderPaid"], "webhook_event_types_wildcard_alone"),
    ],
)
def test_event_types_refused(types: list[str], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.validate_event_types(types)
    assert refused.value.code == code


@pytest.mark.parametrize("hours", [-1, 169, 10**12])
def test_a_rotation_grace_beyond_a_week_is_refused(hours: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.validate_grace(hours)
    assert (refused.value.code, refused.value.params) == (
        "webhook_rotation_grace_invalid",
        {"max": 168},
    )


def test_a_rotation_grace_of_up_to_a_week_is_taken() -> None:
    assert rules.validate_grace(0) == timedelta(0)
    assert rules.validate_grace(168) == timedelta(days=7)
