"""Walking the audit's hash chain: which record was changed, removed or moved.

Each record's hash is ``sha256(previous hash || canonical text)``; the first follows
`GENESIS`. The walk is fed the records in order, page by page, with the anchors (a record
number and the hash it had when the head was anchored outside the database), and says
what does not hold, naming the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

GENESIS = bytes(32)


def link_hash(prev_hash: bytes, body: str) -> bytes:
    """The hash of a record whose canonical text is ``body``, following ``prev_hash``."""
    return hashlib.sha256(prev_hash + body.encode("utf-8")).digest()


class Linked(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> bytes: ...
    @property
    def hash(self) -> bytes: ...
    @property
    def body(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class Finding:
    """What is wrong at record ``seq``."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.problem}"


@dataclass(kw_only=True)
class ChainWalk:
    """The state of one walk: the last record seen and its hash, what was found so far."""

    anchors: Mapping[int, bytes] = field(default_factory=dict)
    last_seq: int = 0
    last_hash: bytes = GENESIS
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    _anchors_seen: set[int] = field(default_factory=set)

    def feed(self, links: Iterable[Linked]) -> None:
        """Check the next records, in order of their numbers."""
        for link in links:
            self._check(link)
            self.last_seq, self.last_hash = link.seq, link.hash
            self.checked += 1

    def _check(self, link: Linked) -> None:
        if link.seq != self.last_seq + 1:
            gap = f"{self.last_seq + 1}" + (
                f"-{link.seq - 1}" if link.seq - 1 > self.last_seq + 1 else ""
            )
            self.findings.append(
                Finding(seq=link.seq, problem=f"record(s) {gap} before it were removed")
            )
        elif link.prev_hash != self.last_hash:
            self.findings.append(
                Finding(
                    seq=link.seq,
                    problem=f"it does not follow record {self.last_seq}: "
                    "a record was changed, removed or moved there",
                )
            )
        if link_hash(link.prev_hash, link.body) != link.hash:
            self.findings.append(
                Finding(
                    seq=link.seq, problem="its content does not match its hash: changed or moved"
                )
            )
        anchored = self.anchors.get(link.seq)
        if anchored is not None:
            self._anchors_seen.add(link.seq)
            if anchored != link.hash:
                self.findings.append(
                    Finding(
                        seq=link.seq,
                        problem="its hash is not the one anchored outside the database: "
                        "the chain up to it was rewritten",
                    )
                )

    def finish(self, head_seq: int, head_hash: bytes) -> list[Finding]:
        """Compare the end of the walk with the chain's head and the anchors; every finding."""
        if head_seq > self.last_seq:
            self.findings.append(
                Finding(
                    seq=self.last_seq + 1,
                    problem=f"record(s) {self.last_seq + 1}-{head_seq} were removed "
                    "(the chain's head counts them)",
                )
            )
        elif head_seq == self.last_seq and head_hash != self.last_hash:
            self.findings.append(
                Finding(seq=head_seq, problem="the chain's head does not hold its hash")
            )
        for seq in sorted(set(self.anchors) - self._anchors_seen):
            self.findings.append(
                Finding(seq=seq, problem="it was anchored outside the database and is gone")
            )
        return self.findings
