"""The ECG files the repository carries (tests/data/ecg) are exactly those SHA256SUMS lists,
byte for byte, and they are development records only (see tests/data/ecg/README.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.ecg_file import ECG_DATA

SUMS = ECG_DATA / "SHA256SUMS"
#: The folder's own files, written here rather than copied: not in SHA256SUMS.
OWN_FILES = {"README.md", "SHA256SUMS"}
#: Records the shared collection holds out for scoring, as its README names them (the mitdb
#: records that are not development records, and the qtdb windows cut from the same tapes).
#: The check that every record is a development record covers the rest.
HELD_OUT = {
    *(f"mitdb/{n}" for n in ("104", "113", "121", "200", "202", "208", "223", "231", "232")),
    *(f"qtdb/sel{n}" for n in ("104", "223", "231", "232")),
}
#: The files a WFDB record needs, by folder: header, signal file, the annotations read.
COMPANIONS = {"mitdb": {".hea", ".dat", ".atr"}, "qtdb": {".hea", ".dat", ".q1c", ".pu"}}
LINE = re.compile(r"(?P<digest>[0-9a-f]{64})  (?P<path>[^/\s][^\s]*)")


def listed() -> dict[str, str]:
    """SHA256SUMS as {relative path: digest}."""
    entries: dict[str, str] = {}
    for line in SUMS.read_text(encoding="ascii").splitlines():
        match = LINE.fullmatch(line)
        assert match, f"not a sha256sum line: {line!r}"
        assert match["path"] not in entries, f"listed twice: {match['path']}"
        entries[match["path"]] = match["digest"]
    return entries


def on_disk() -> set[str]:
    return {path.relative_to(ECG_DATA).as_posix() for path in ECG_DATA.rglob("*") if path.is_file()}


def records() -> dict[str, set[str]]:
    """Every WFDB record of mitdb/ and qtdb/ ("qtdb/sel100"), with the suffixes it has."""
    found: dict[str, set[str]] = {}
    for relative in on_disk():
        path = Path(relative)
        if path.parts[0] in COMPANIONS:
            found.setdefault(path.with_suffix("").as_posix(), set()).add(path.suffix)
    return found


def development_records() -> set[str]:
    lines = (ECG_DATA / "DEV_RECORDS.txt").read_text(encoding="ascii").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_sums_are_sorted_relative_paths_inside_the_folder() -> None:
    paths = list(listed())
    assert paths == sorted(paths)
    assert all(".." not in Path(p).parts and not p.startswith("./") for p in paths)


def test_every_listed_file_has_its_checksum() -> None:
    wrong = [
        path
        for path, digest in listed().items()
        if hashlib.sha256((ECG_DATA / path).read_bytes()).hexdigest() != digest
    ]
    assert wrong == []


def test_no_file_is_present_that_is_not_listed() -> None:
    assert on_disk() - OWN_FILES == set(listed())


def test_only_development_records_are_present() -> None:
    found = set(records())
    assert found, "no WFDB records found"
    assert found <= development_records(), found - development_records()
    stems = {Path(p).with_suffix("").as_posix() for p in on_disk()}
    assert not stems & HELD_OUT
    assert not HELD_OUT & development_records()


def test_no_held_out_record_is_named_in_the_sums() -> None:
    names = {Path(p).with_suffix("").as_posix() for p in listed()}
    assert not names & HELD_OUT


def test_every_record_has_its_header_signal_and_annotations() -> None:
    for record, suffixes in sorted(records().items()):
        assert suffixes == COMPANIONS[record.split("/")[0]], record
