"""Every ECG format file read, and our measurements against the cart's own where it stored them.

Usage::

    .venv/bin/python bench/ecg_formats.py

The files are the repository's own (tests/data/ecg/formats: carts' and other tools' files,
none written by us; the SCP-ECG compression modes no real file here uses are tested on files
of tests/unit/ecg/scp_writer.py, not counted here). For each format: files read, the
measurements the carts stored that we compare (rate 5 bpm, intervals 10 ms, axes 15°), how many
agree within tolerance, the gaps beyond it, and the time to read and analyse.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import VENDORED
from ecg.analysis import analyze_ecg
from ecg.errors import EcgFormatError
from ecg.formats import read_ecg


@dataclass
class Tally:
    files: int = 0
    read: int = 0
    compared: int = 0
    agree: int = 0
    seconds: float = 0.0
    gaps: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _inputs() -> list[tuple[str, str, bytes, dict[str, bytes]]]:
    """(format folder, file name, bytes, related files) of every format file."""
    out: list[tuple[str, str, bytes, dict[str, bytes]]] = []
    for folder in sorted(p for p in (VENDORED / "formats").iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        headers = [p for p in files if p.suffix == ".hea"]
        if headers:
            for header in headers:
                related = {p.name: p.read_bytes() for p in files if p.stem == header.stem}
                out.append((folder.name, header.name, header.read_bytes(), related))
            continue
        out.extend((folder.name, p.name, p.read_bytes(), {}) for p in files)
    return out


def _score(tally: Tally, name: str, data: bytes, related: dict[str, bytes]) -> None:
    tally.files += 1
    start = time.perf_counter()
    try:
        record = read_ecg(data, name, related_files=related or None)
        analysis = analyze_ecg(record)
    except EcgFormatError as error:
        tally.refused.append(f"{name}: {error}")
        return
    tally.seconds += time.perf_counter() - start
    tally.read += 1
    for d in analysis.device_comparison:
        if d.ours is None:
            continue
        tally.compared += 1
        if d.beyond_tolerance:
            tally.gaps.append(f"{name} {d.key}: cart {d.device:g}, ours {d.ours:g}")
        else:
            tally.agree += 1


def main() -> None:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for fmt, name, data, related in _inputs():
        _score(tallies[fmt], name, data, related)
    print(f"{'format':<46} {'files':>5} {'read':>5} {'compared':>8} {'agree':>6} {'ms/file':>8}")
    totals = Tally()
    for fmt, t in tallies.items():
        per_file = 1000 * t.seconds / t.read if t.read else 0.0
        print(f"{fmt:<46} {t.files:>5} {t.read:>5} {t.compared:>8} {t.agree:>6} {per_file:>8.0f}")
        totals.files += t.files
        totals.read += t.read
        totals.compared += t.compared
        totals.agree += t.agree
    print(f"{'all':<46} {totals.files:>5} {totals.read:>5} {totals.compared:>8} {totals.agree:>6}")
    for fmt, t in tallies.items():
        for line in t.gaps:
            print(f"  gap    {fmt}: {line}")
        for line in t.refused:
            print(f"  refused {fmt}: {line}")


if __name__ == "__main__":
    main()
