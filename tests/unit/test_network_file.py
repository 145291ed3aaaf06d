from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from storage.records import Destination, DutyShift, Priority, Role, RouteSpec, Specialty, Tier
from teleradiology.core.errors import ConfigError
from teleradiology.core.network_file import parse_network
from teleradiology.core.passwords import hash_password, verify_password

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo-network.toml"

BASE = """
[[facility]]
code = "C"
name = "信阳市中心医院"
tier = "city"

[[facility]]
code = "K"
name = "淮滨县人民医院"
tier = "county"
parent = "C"
"""


def test_the_demo_network_parses_with_every_tier_and_role() -> None:
    facilities, users = parse_network(DEMO.read_text("utf-8"))
    tiers = [f.tier for f in facilities]
    assert tiers.count(Tier.CITY) == 1
    assert tiers.count(Tier.COUNTY) == 2  # 淮滨县, and 固始县 beside it (scope tests)
    assert tiers.count(Tier.TOWNSHIP) == 3
    assert tiers.count(Tier.VILLAGE) == 6
    assert {u.role for u in users} == set(Role)
    readers = [u for u in users if u.role is Role.READER]
    assert {s for u in readers for s in u.specialties} == {Specialty.RADIOLOGY, Specialty.ECG}
    # Parents come before their children, so one pass of upserts resolves every parent.
    seen: set[str] = set()
    for f in facilities:
        assert f.parent is None or f.parent in seen
        seen.add(f.code)


def test_a_demo_files_plaintext_passwords_are_stored_as_argon2_hashes_marked_demo() -> None:
    _, users = parse_network(
        "demo = true\n"
        + BASE
        + '[[user]]\nusername="a"\nrole="admin"\nfacility="K"\npassword="long-enough"\n'
    )
    assert users[0].password_hash is not None
    assert users[0].password_hash.startswith("$argon2id$")
    assert verify_password(users[0].password_hash, "long-enough")
    assert not verify_password(users[0].password_hash, "wrong-one")
    assert users[0].demo_password
    with pytest.raises(ConfigError, match="8 characters"):
        parse_network(
            "demo = true\n"
            + BASE
            + '[[user]]\nusername="r"\nrole="admin"\nfacility="K"\npassword="short"\n'
        )


def test_the_demo_network_says_it_is_one_and_every_user_is_marked() -> None:
    _, users = parse_network(DEMO.read_text("utf-8"))
    assert users
    assert all(u.demo_password and u.password_hash for u in users)


def test_a_real_network_gives_a_hash_or_no_password_and_may_deactivate() -> None:
    given = hash_password("a-real-password")
    _, users = parse_network(
        BASE
        + f'[[user]]\nusername="a"\nrole="admin"\nfacility="K"\npassword_hash="{given}"\n'
        + '[[user]]\nusername="b"\nrole="clinic"\nfacility="K"\nactive=false\n'
        + '[[user]]\nusername="c"\nrole="clinic"\nfacility="K"\n'
    )
    a, b, c = users
    assert a.password_hash == given
    assert not a.demo_password
    assert (b.password_hash, b.active) == (None, False)
    assert (c.password_hash, c.active) == (None, None)  # None: left as it is


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[facility]]\ncode="V"\nname="村"\ntier="hamlet"\nparent="K"\n', "tier 'hamlet'"),
        ('[[facility]]\ncode="V"\nname="村"\ntier="village"\n', "needs a 'parent'"),
        ('[[facility]]\ncode="K"\nname="again"\ntier="county"\nparent="C"\n', "appears twice"),
        ('[[facility]]\ncode="T"\nname="镇"\ntier="township"\nparent="C"\n', "cannot stand under"),
        (
            '[[facility]]\ncode="V"\nname="村"\ntier="village"\nparent="K"\nae_titles=["AE\\\\1"]\n',
            "AE title",
        ),
        (
            '[[facility]]\ncode="V"\nname="村"\ntier="village"\nparent="K"\n'
            'ae_titles=["ABCDEFGHIJKLMNOPQ"]\n',
            "1 to 16",
        ),
        ('[[user]]\nusername="r"\nrole="reader"\nfacility="K"\n', "at least one specialty"),
        (
            '[[user]]\nusername="r"\nrole="clinic"\nfacility="K"\nspecialties=["ecg"]\n',
            "only readers",
        ),
        ('[[user]]\nusername="r"\nrole="boss"\nfacility="K"\n', "role 'boss'"),
        (
            '[[user]]\nusername="r"\nrole="admin"\nfacility="K"\npassword="long-enough"\n',
            "carries no plaintext 'password'",
        ),
        (
            '[[user]]\nusername="r"\nrole="admin"\nfacility="K"\npassword_hash="secret123"\n',
            "must be an argon2 hash",
        ),
        (
            '[[user]]\nusername="r"\nrole="admin"\nfacility="K"\nactive="no"\n',
            "'active' must be true or false",
        ),
        ("[[patient]]\nname='x'\n", "unknown sections"),
        ("this is = not [ toml", "not valid TOML"),
    ],
)
def test_a_bad_network_file_is_refused_with_a_message_naming_the_problem(
    extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_network(BASE + extra)


def test_two_facilities_may_not_share_an_ae_title() -> None:
    extra = (
        '[[facility]]\ncode="V1"\nname="村1"\ntier="village"\nparent="K"\nae_titles=["A1"]\n'
        '[[facility]]\ncode="V2"\nname="村2"\ntier="village"\nparent="K"\nae_titles=["A1"]\n'
    )
    with pytest.raises(ConfigError, match="AE title A1 is used by V1 and V2"):
        parse_network(BASE + extra)


def test_deadlines_rules_destinations_and_duty_are_read_from_the_file() -> None:
    text = BASE.replace(
        'tier = "city"\n',
        'tier = "city"\n[facility.policy]\n'
        "deadline_minutes = { urgent = 20, routine = 600, stemi = 8 }\n"
        "critical_ack_minutes = 10\n",
        1,
    ) + (
        '[[facility]]\ncode="T"\nname="镇"\ntier="township"\nparent="K"\n'
        'report_destination = { ae_title = "TWS", host = "10.0.0.5", port = 104 }\n'
        '[[facility.route]]\nspecialty = "ecg"\nfirst_read = "T"\nescalation = "K"\n'
        '[[facility.route]]\nmodality = "ct"\npriority = "urgent"\nfirst_read = "C"\n'
        "deadline_minutes = 45\n"
        '[[user]]\nusername="e"\nrole="reader"\nfacility="T"\nspecialties=["ecg"]\n'
        'duty = [{ days = ["sat", "sun"], from = "20:00", until = "08:00" }]\n'
    )
    facilities, users = parse_network(text)
    city = next(f for f in facilities if f.code == "C")
    assert city.policy is not None
    assert city.policy.deadlines[Priority.HIGH] == timedelta(minutes=20)
    assert city.policy.deadlines[Priority.MEDIUM] == timedelta(hours=10)
    assert city.policy.deadlines[Priority.LOW] == timedelta(hours=72)  # the default
    assert city.policy.stemi_deadline == timedelta(minutes=8)
    assert city.policy.critical_ack == timedelta(minutes=10)
    township = next(f for f in facilities if f.code == "T")
    assert township.report_destination == Destination(ae_title="TWS", host="10.0.0.5", port=104)
    assert township.routes == (
        RouteSpec(specialty=Specialty.ECG, first_read="T", escalation="K"),
        RouteSpec(
            modality="CT", priority=Priority.HIGH, first_read="C", deadline=timedelta(minutes=45)
        ),
    )
    (reader,) = users
    assert reader.duty == (DutyShift(weekdays=frozenset({6, 7}), starts=time(20), ends=time(8)),)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[facility.policy]\ndeadline_minutes = { urgent = 0 }\n", "positive number"),
        ("[facility.policy]\ndeadline_minutes = { soon = 5 }\n", "use one of"),
        # beyond a year, or too small to be a microsecond: no deadline
        ("[facility.policy]\ndeadline_minutes = { low = 1.7e308 }\n", "up to 527040"),
        ("[facility.policy]\ncritical_ack_minutes = 5e-60\n", "positive number"),
        ("[facility.policy]\ntimezone = 'Mars/Olympus'\n", "IANA"),
        ("[[facility.route]]\nspecialty = 'derm'\nfirst_read = 'K'\n", "radiology or ecg"),
        ("[[facility.route]]\npriority = 'asap'\nfirst_read = 'K'\n", "urgent, routine or low"),
        ("[[facility.route]]\nspecialty = 'ecg'\n", "'first_read' is missing"),
        ("report_destination = { ae_title = 'X', host = 'h', port = 0 }\n", "TCP port"),
    ],
)
def test_bad_routing_data_is_refused_naming_the_value(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_network(BASE + extra)


def test_a_bad_duty_shift_is_refused() -> None:
    user = '[[user]]\nusername="r"\nrole="reader"\nfacility="K"\nspecialties=["ecg"]\n'
    with pytest.raises(ConfigError, match="time of day"):
        parse_network(BASE + user + 'duty = [{ from = "8am", until = "18:00" }]\n')
    with pytest.raises(ConfigError, match="days must be among"):
        parse_network(
            BASE + user + 'duty = [{ days = ["someday"], from = "08:00", until = "18:00" }]\n'
        )


FINGERPRINT = ":".join(["AB"] * 32)  # as openssl prints it

WORKSTATIONS = f"""
[[facility]]
code = "HB"
name = "淮滨县人民医院"
tier = "county"
ae_titles = ["HBDR01"]
report_destination = {{ ae_title = "HBDR01", host = "10.1.2.3", port = 104, tls = true }}

[[facility.workstation]]
ae_title = "HBDR01"
host = "10.1.2.0/24"
certificate_sha256 = "{FINGERPRINT}"

[[facility.workstation]]
ae_title = "HBUS01"
host = "us1.hb.example"
"""


def test_workstations_are_bound_to_hosts_and_certificates() -> None:
    (f,), _ = parse_network(WORKSTATIONS)
    assert f.ae_titles == ("HBDR01", "HBUS01")  # a workstation's title is one of its own
    dr, us = f.workstations
    assert (dr.host, dr.cert_sha256) == ("10.1.2.0/24", "ab" * 32)
    assert (us.host, us.cert_sha256) == ("us1.hb.example", None)
    assert f.report_destination is not None
    assert f.report_destination.tls


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('certificate_sha256 = "abc"', "64 hex digits"),
        ('host = "10.1.2.0/33"', "CIDR"),
        ("port = 4", "unknown keys"),
    ],
)
def test_a_bad_workstation_binding_is_refused_naming_it(bad: str, message: str) -> None:
    text = WORKSTATIONS.replace('host = "us1.hb.example"', bad)
    with pytest.raises(ConfigError, match=message):
        parse_network(text)
