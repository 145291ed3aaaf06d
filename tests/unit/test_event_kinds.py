"""The event and notification kinds the SQL writes and reads are the ones Python names.

Most events are written by the services through `EventKind` and `NotificationKind`; the
ingest statement (a migration) writes its own, and queries read them by name. A kind spelled
differently there would be an event nobody counts.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from storage.records import EventKind, NotificationKind, TokenKind

_EVENT_INSERT = re.compile(r"insert\s+into\s+event\s*\(\s*kind\b[^)]*\)\s*values\s*\(\s*'([^']*)'")
_NOTIFICATION_INSERT = re.compile(
    r"insert\s+into\s+notification\s*\(\s*kind\b[^)]*\)\s*values\s*\(\s*'([^']*)'"
)
#: plpgsql's dynamic form: ``execute 'insert into notification (kind, …) values ($1, …)'
#: using 'kind', …`` (the table may not exist yet when the function is created)
_NOTIFICATION_EXECUTE = re.compile(
    r"insert\s+into\s+notification\s*\(\s*kind\b.*?using\s+'([^']*)'", re.DOTALL
)
#: what queries filter on: ``e.kind = 'claimed'``
_KIND_READ = re.compile(r"\bkind\s*=\s*'([^']*)'")
#: the kind migration 0024 renamed to 'final'; only that migration still names it
_RENAMED = {"reported"}


def _sql(folder: str) -> dict[str, str]:
    root = files("storage") / folder
    return {
        entry.name: entry.read_text("utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".sql")
    }


def _found(pattern: re.Pattern[str], texts: dict[str, str]) -> set[tuple[str, str]]:
    return {(name, kind) for name, text in texts.items() for kind in pattern.findall(text)}


def test_the_migrations_write_event_kinds_of_the_enum() -> None:
    written = _found(_EVENT_INSERT, _sql("migrations"))
    assert {kind for _, kind in written} >= {"received", "identity_conflict", "late_instance"}
    unknown = {(name, kind) for name, kind in written if kind not in set(EventKind)}
    assert unknown == set()


def test_the_migrations_write_notification_kinds_of_the_enum() -> None:
    migrations = _sql("migrations")
    written = _found(_NOTIFICATION_INSERT, migrations) | _found(_NOTIFICATION_EXECUTE, migrations)
    assert {kind for _, kind in written} >= {"late_instance"}
    unknown = {(name, kind) for name, kind in written if kind not in set(NotificationKind)}
    assert unknown == set()


@pytest.mark.parametrize("folder", ["migrations", "sql"])
def test_the_event_kinds_queries_read_are_of_the_enum(folder: str) -> None:
    read = _found(_KIND_READ, _sql(folder))
    # api_token has a kind column too (TokenKind): its queries filter on it the same way
    known = set(EventKind) | set(TokenKind) | _RENAMED
    assert {(name, kind) for name, kind in read if kind not in known} == set()


def test_the_patterns_find_what_they_look_for() -> None:
    sample = {
        "x.sql": "insert into event (kind, study_id) values ('claimed', 1);\n"
        "execute 'insert into notification (kind, facility_id) values ($1, $2)'\n"
        "    using 'case', 3;\n"
        "select 1 from event e where e.kind = 'final';"
    }
    assert _found(_EVENT_INSERT, sample) == {("x.sql", "claimed")}
    assert _found(_NOTIFICATION_EXECUTE, sample) == {("x.sql", "case")}
    assert _found(_KIND_READ, sample) == {("x.sql", "final")}
