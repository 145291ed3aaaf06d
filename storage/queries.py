"""Runtime SQL, kept in ``storage/sql/*.sql`` as named blocks and parsed once.

A block starts with a line ``-- name: block_name`` and runs to the next such line.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import cache

_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_blocks(text: str, *, source: str) -> dict[str, str]:
    """Split one SQL file into its named blocks.

    Raises
    ------
    ValueError
        If a name repeats, or text stands before the first ``-- name:`` line.
    """
    parts = _HEADER.split(text)
    if parts[0].strip() and not all(
        line.startswith("--") or not line.strip() for line in parts[0].splitlines()
    ):
        raise ValueError(f"{source}: SQL before the first '-- name:' line")
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        blocks[name] = body.strip()
    return blocks


@cache
def queries() -> dict[str, str]:
    """Every named query of the package, by name (names are unique across files)."""
    found: dict[str, str] = {}
    folder = importlib.resources.files("storage") / "sql"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_blocks(entry.read_text("utf-8"), source=entry.name).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined in two files")
            found[name] = sql
    return found


def q(name: str) -> str:
    """The SQL text of one named query."""
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in storage/sql") from None
