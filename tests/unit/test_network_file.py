from __future__ import annotations

from pathlib import Path

import pytest

from storage.records import Role, Specialty, Tier
from teleradiology.auth import verify_password
from teleradiology.errors import ConfigError
from teleradiology.network import parse_network

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


def test_passwords_are_stored_as_argon2_hashes() -> None:
    _, users = parse_network(
        BASE + '[[user]]\nusername="a"\nrole="admin"\nfacility="K"\npassword="long-enough"\n'
    )
    assert users[0].password_hash is not None
    assert users[0].password_hash.startswith("$argon2id$")
    assert verify_password(users[0].password_hash, "long-enough")
    assert not verify_password(users[0].password_hash, "wrong-one")


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
        ('[[user]]\nusername="r"\nrole="admin"\nfacility="K"\npassword="short"\n', "8 characters"),
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
