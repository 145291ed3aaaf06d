"""Paths and loaders for the ECG reader tests (real files from tests/data/ecg)."""

from __future__ import annotations

from pathlib import Path

from ecg import EcgRecord, read_ecg
from tests.ecg_file import FORMATS

WFDB_DIR = FORMATS / "wfdb_12lead"


def wfdb_files(directory: Path = WFDB_DIR) -> dict[str, bytes]:
    """Every file of a WFDB record directory, by name."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def read_file(relative: str) -> EcgRecord:
    """Read one file of formats/ (a WFDB record by its .hea) through ``read_ecg``."""
    path = FORMATS / relative
    related = wfdb_files(path.parent) if path.suffix == ".hea" else None
    return read_ecg(path.read_bytes(), path.name, related_files=related)
