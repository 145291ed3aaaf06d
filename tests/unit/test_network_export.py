"""The network file written back: what ``format_network`` writes, ``parse_network`` reads as
the same facilities and users; and the tier order a facility's place in the tree keeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from storage.records import Tier
from teleradiology.core.errors import ConfigError
from teleradiology.core.network_file import check_placement, format_network, parse_network

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo-network.toml"


def test_the_demo_network_written_back_reads_as_the_same_network() -> None:
    facilities, users = parse_network(DEMO.read_text("utf-8"))
    # a deactivated village and user are written so
    facilities[-1] = dataclasses.replace(facilities[-1], active=False)
    users[0] = dataclasses.replace(users[0], active=False)
    text = format_network(facilities, users)
    assert "password =" not in text
    assert "password_hash" not in text
    again_f, again_u = parse_network(text)
    assert again_f == facilities
    # the passwords stay behind; the rest of each user is the same
    assert again_u == [
        dataclasses.replace(u, password_hash=None, demo_password=False) for u in users
    ]
    assert format_network(again_f, again_u) == text


def test_a_written_file_declares_bindings_policy_routes_and_duty() -> None:
    facilities, users = parse_network(DEMO.read_text("utf-8"))
    text = format_network(facilities, users)
    assert "[facility.policy.deadline_minutes]" in text
    assert "route = [" in text
    assert "report_destination" in text
    assert 'from = "08:00"' in text


@pytest.mark.parametrize(
    ("tier", "parent", "children"),
    [
        (Tier.VILLAGE, ("HB-XL", Tier.TOWNSHIP), ()),
        (Tier.VILLAGE, ("HB-COUNTY", Tier.COUNTY), ()),
        (Tier.TOWNSHIP, ("HB-COUNTY", Tier.COUNTY), [("V", Tier.VILLAGE)]),
        (Tier.CITY, None, [("C", Tier.COUNTY)]),
        (Tier.COUNTY, None, ()),
    ],
)
def test_the_tier_order_allows(
    tier: Tier, parent: tuple[str, Tier] | None, children: list[tuple[str, Tier]]
) -> None:
    check_placement("X", tier, parent, children)


@pytest.mark.parametrize(
    ("tier", "parent", "children", "said"),
    [
        (Tier.VILLAGE, ("V2", Tier.VILLAGE), (), "cannot stand under V2 (village)"),
        (Tier.TOWNSHIP, ("T2", Tier.TOWNSHIP), (), "a township stands under county"),
        (Tier.VILLAGE, None, (), "needs a parent"),
        (Tier.VILLAGE, ("T", Tier.TOWNSHIP), [("V", Tier.VILLAGE)], "V (village) stands under"),
        (Tier.COUNTY, ("T", Tier.TOWNSHIP), (), "cannot stand under T"),
    ],
)
def test_the_tier_order_refuses(
    tier: Tier, parent: tuple[str, Tier] | None, children: list[tuple[str, Tier]], said: str
) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        check_placement("X", tier, parent, children)
