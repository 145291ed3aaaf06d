"""The chain walk on plain values: a clean chain, and each kind of tampering named at the
record where it shows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from teleradiology.core.audit_chain import GENESIS, ChainWalk, link_hash


@dataclass(frozen=True)
class Link:
    seq: int
    prev_hash: bytes
    hash: bytes
    body: str


def _chain(count: int) -> list[Link]:
    links, prev = [], GENESIS
    for seq in range(1, count + 1):
        body = f'[{seq}, "read", "case {seq}"]'
        links.append(Link(seq, prev, link_hash(prev, body), body))
        prev = links[-1].hash
    return links


def _walk(links: list[Link], anchors: dict[int, bytes] | None = None) -> list[str]:
    walk = ChainWalk(anchors=anchors or {})
    walk.feed(links[:3])
    walk.feed(links[3:])
    head = max((link.seq for link in links), default=0)
    head_hash = next((link.hash for link in links if link.seq == head), GENESIS)
    return [str(f) for f in walk.finish(head, head_hash)]


def test_a_clean_chain_has_no_findings() -> None:
    links = _chain(6)
    assert _walk(links, {4: links[3].hash}) == []


def test_a_changed_body_is_named() -> None:
    links = _chain(6)
    links[2] = dataclasses.replace(links[2], body=links[2].body.replace("read", "list"))
    assert _walk(links) == ["record 3: its content does not match its hash: changed or moved"]


def test_a_removed_record_is_named_at_the_next() -> None:
    links = _chain(6)
    del links[1:3]
    assert _walk(links) == ["record 4: record(s) 2-3 before it were removed"]


def test_swapped_records_are_named() -> None:
    links = _chain(5)
    second, third = links[1], links[2]
    links[1] = dataclasses.replace(third, seq=2)
    links[2] = dataclasses.replace(second, seq=3)
    assert [f.split(":")[0] for f in _walk(links)] == ["record 2", "record 3", "record 4"]


def test_a_rewritten_chain_is_caught_by_an_anchor_and_a_lost_anchor_is_named() -> None:
    original = _chain(5)
    rewritten = _chain(5)  # same shape, recomputed from a changed second record
    prev = rewritten[0].hash
    for i in range(1, 5):
        body = rewritten[i].body + (" hidden" if i == 1 else "")
        rewritten[i] = Link(i + 1, prev, link_hash(prev, body), body)
        prev = rewritten[i].hash
    assert _walk(rewritten, {3: original[2].hash, 9: b"x" * 32}) == [
        "record 3: its hash is not the one anchored outside the database: the chain up to it "
        "was rewritten",
        "record 9: it was anchored outside the database and is gone",
    ]
