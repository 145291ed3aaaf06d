"""Where the ECG benchmarks find their records.

Development records and the format files come from the repository's own copy,
``tests/data/ecg``, where it has them (the same bytes as the shared collection). The other
development records, and every held-out record, are only in the shared collection beside the
repository, ``../shared/data/ecg``, which a plain clone does not have. Without it a benchmark
says so in one line and exits non-zero; it does not score a smaller set under the same heading.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The tests' ECG data (``ECG_DATA`` in tests/ecg_file.py): development records only.
VENDORED = REPO / "tests" / "data" / "ecg"
#: The shared collection: all development records and the held-out ones.
SHARED = (REPO / ".." / "shared" / "data" / "ecg").resolve()


def development_records(folder: str) -> list[str]:
    """The development records of `folder` (``mitdb``, ``qtdb``) that DEV_RECORDS.txt names."""
    lines = (VENDORED / "DEV_RECORDS.txt").read_text(encoding="ascii").splitlines()
    return [line.split("/", 1)[1] for line in lines if line.startswith(f"{folder}/")]


def vendored_records(folder: str) -> list[str]:
    return sorted(path.stem for path in (VENDORED / folder).glob("*.hea"))


def development_record(folder: str, name: str, suffixes: tuple[str, ...]) -> Path:
    """A development record's path without suffix (as wfdb takes it): the repository's copy
    if it has every file of `suffixes`, else the shared collection's; exits if neither has."""
    for root in (VENDORED, SHARED):
        base = root / folder / name
        if all(base.with_suffix(suffix).is_file() for suffix in suffixes):
            return base
    where = "is not present" if not SHARED.is_dir() else "does not have it either"
    sys.exit(
        f"development record {folder}/{name} is not in tests/data/ecg, and ../shared/data/ecg "
        f"{where}; the repository has {folder} {' '.join(vendored_records(folder))} "
        f"(pass them with --records)"
    )


def held_out_folder(folder: str) -> Path:
    """The shared collection's `folder`, where the held-out records are; exits if absent."""
    path = SHARED / folder
    if not path.is_dir():
        sys.exit(
            f"the held-out records live in ../shared/data/ecg and are not present ({SHARED}): "
            "nothing held out can be scored from a plain clone"
        )
    return path


def folders(paths: list[Path]) -> str:
    """The folders `paths` are in, for the benchmark's ``data:`` line."""
    return ", ".join(sorted({str(path.parent) for path in paths}))
