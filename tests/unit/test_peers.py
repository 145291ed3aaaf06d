"""Peer rules of calling AE titles and the refusal limit per address (pure)."""

from __future__ import annotations

import pytest

from storage.search import Level
from teleradiology.core.errors import ConfigError, Forbidden
from teleradiology.core.peers import (
    LimitPolicy,
    Refusal,
    RefusalLimit,
    admit,
    check_peer_host,
    fingerprint,
    peer_rule,
)
from teleradiology.core.query import require_real_key

CERT = "ab" * 32
OTHER = "cd" * 32


def test_fingerprints_are_read_as_openssl_prints_them() -> None:
    printed = "sha256 Fingerprint=" + ":".join(["AB"] * 32)
    assert fingerprint(printed.split("=", 1)[1]) == CERT
    assert fingerprint(CERT.upper()) == CERT
    with pytest.raises(ConfigError, match="64 hex digits"):
        fingerprint("ab:cd")


def test_peer_hosts_are_addresses_blocks_or_names() -> None:
    assert check_peer_host(" 10.1.2.0/24 ") == "10.1.2.0/24"
    assert check_peer_host("ws1.hb.example") == "ws1.hb.example"
    with pytest.raises(ConfigError, match="CIDR"):
        check_peer_host("10.1.2.0/99")


def test_an_unknown_title_is_refused() -> None:
    assert admit(None, "10.0.0.1", None, allow_unbound=True) is Refusal.UNKNOWN_TITLE


def test_a_title_bound_to_a_certificate_needs_that_certificate() -> None:
    rule = peer_rule("HBXL01", certificates=[CERT])
    assert admit(rule, "10.0.0.1", None, allow_unbound=False) is Refusal.NO_CERTIFICATE
    assert admit(rule, "10.0.0.1", OTHER, allow_unbound=False) is Refusal.WRONG_CERTIFICATE
    assert admit(rule, "10.0.0.1", CERT, allow_unbound=False) is None


def test_a_title_bound_to_a_block_is_refused_from_elsewhere() -> None:
    rule = peer_rule("HBXL01", hosts=["10.1.2.0/24"])
    assert admit(rule, "10.1.2.77", None, allow_unbound=False) is None
    assert admit(rule, "::ffff:10.1.2.77", None, allow_unbound=False) is None
    assert admit(rule, "10.1.3.1", None, allow_unbound=False) is Refusal.WRONG_ADDRESS
    # Both bindings, both required.
    both = peer_rule("HBXL01", hosts=["10.1.2.5"], certificates=[CERT])
    assert admit(both, "10.1.2.5", None, allow_unbound=False) is Refusal.NO_CERTIFICATE
    assert admit(both, "10.1.2.6", CERT, allow_unbound=False) is Refusal.WRONG_ADDRESS


def test_a_host_name_binds_to_what_it_resolved_to_and_nothing_when_it_did_not() -> None:
    rule = peer_rule("HBXL01", hosts=["ws1.example"], resolved=["10.9.9.9"])
    assert admit(rule, "10.9.9.9", None, allow_unbound=False) is None
    unresolved = peer_rule("HBXL01", hosts=["ws1.example"])
    assert admit(unresolved, "10.9.9.9", None, allow_unbound=True) is Refusal.WRONG_ADDRESS


def test_unbound_titles_only_while_allowed() -> None:
    rule = peer_rule("HBXL01")
    assert admit(rule, "10.0.0.1", None, allow_unbound=True) is None
    assert admit(rule, "10.0.0.1", None, allow_unbound=False) is Refusal.UNBOUND


def test_refusals_block_an_address_for_a_growing_time_and_never_for_good() -> None:
    limit = RefusalLimit(LimitPolicy(refusals=3, window_s=60, first_block_s=10, longest_block_s=25))
    assert not limit.refused("10.0.0.9", 0.0)
    assert not limit.refused("10.0.0.9", 1.0)
    assert not limit.blocked("10.0.0.9", 1.5)
    assert limit.refused("10.0.0.9", 2.0)  # the third: a block of 10 s starts
    assert limit.blocked("10.0.0.9", 11.9)
    assert not limit.blocked("10.0.0.8", 5.0)  # another address is not concerned
    assert not limit.blocked("10.0.0.9", 12.1)
    for t in (13.0, 14.0):
        limit.refused("10.0.0.9", t)
    assert limit.refused("10.0.0.9", 15.0)  # the second block doubles: 20 s
    assert limit.blocked("10.0.0.9", 34.9)
    assert not limit.blocked("10.0.0.9", 35.1)
    for t in (36.0, 37.0, 38.0):
        limit.refused("10.0.0.9", t)
    assert limit.blocked("10.0.0.9", 62.9)  # capped at 25 s
    assert not limit.blocked("10.0.0.9", 63.1)


def test_refusals_spread_beyond_the_window_do_not_block() -> None:
    limit = RefusalLimit(LimitPolicy(refusals=3, window_s=10, first_block_s=5))
    for t in (0.0, 11.0, 22.0, 33.0):
        assert not limit.refused("10.0.0.9", t)
    assert not limit.blocked("10.0.0.9", 33.5)


def test_a_quiet_address_starts_afresh() -> None:
    limit = RefusalLimit(LimitPolicy(refusals=1, window_s=60, first_block_s=10, forget_after_s=100))
    assert limit.refused("10.0.0.9", 0.0)
    assert limit.refused("10.0.0.9", 11.0)  # 20 s now
    assert limit.blocked("10.0.0.9", 30.0)
    assert limit.refused("10.0.0.9", 200.0)  # forgotten: 10 s again
    assert not limit.blocked("10.0.0.9", 210.5)


def test_the_limit_remembers_a_bounded_number_of_addresses() -> None:
    limit = RefusalLimit(LimitPolicy(refusals=1, first_block_s=10, remembered=2))
    for n in range(3):
        limit.refused(f"10.0.0.{n}", 0.0)
    assert not limit.blocked("10.0.0.0", 1.0)
    assert limit.blocked("10.0.0.2", 1.0)


@pytest.mark.parametrize(
    "criteria",
    [
        {},
        {"PatientName": ["*"]},
        {"PatientID": ["*"], "PatientName": ["*^*"]},
        {"PatientID": [""], "ModalitiesInStudy": ["CT"]},
        {"StudyDate": ["-"]},
    ],
)
def test_a_find_without_a_real_key_is_refused(criteria: dict[str, list[str]]) -> None:
    with pytest.raises(Forbidden, match="real key"):
        require_real_key(Level.STUDY, criteria)
    with pytest.raises(Forbidden, match="real key"):
        require_real_key(Level.PATIENT, criteria)


@pytest.mark.parametrize(
    "criteria",
    [
        {"PatientName": ["王*"]},
        {"PatientID": ["WD-7"]},
        {"StudyDate": ["20260101-"]},
        {"AccessionNumber": ["A1?"]},
    ],
)
def test_a_find_with_a_real_key_passes(criteria: dict[str, list[str]]) -> None:
    require_real_key(Level.STUDY, criteria)


def test_series_and_image_queries_name_their_study_already() -> None:
    require_real_key(Level.SERIES, {"Modality": ["CT"]})
