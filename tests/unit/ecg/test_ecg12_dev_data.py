"""The labelled 12-lead development ECGs (tests/data/ecg12-dev) are the files its SHA256SUMS
lists, byte for byte, with one labels.csv row and one original header per record."""

from __future__ import annotations

import csv
import hashlib

from tests.ecg_file import ECG12_DEV


def test_every_record_file_matches_its_checksum() -> None:
    lines = (ECG12_DEV / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    sums: dict[str, str] = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        sums[name] = digest
    on_disk = {p.name for p in (ECG12_DEV / "records").iterdir()}
    assert set(sums) == on_disk
    for name, digest in sums.items():
        assert hashlib.sha256((ECG12_DEV / "records" / name).read_bytes()).hexdigest() == digest


def test_labels_and_original_headers_cover_every_record() -> None:
    with (ECG12_DEV / "labels.csv").open(encoding="utf-8") as handle:
        names = {row["record"] for row in csv.DictReader(handle)}
    assert len(names) == 50
    assert {p.stem for p in (ECG12_DEV / "records").glob("*.hea")} == names
    assert {p.stem for p in (ECG12_DEV / "original_headers").glob("*.hea")} == names
