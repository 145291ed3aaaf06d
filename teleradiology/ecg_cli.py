"""``telemed ecg analyze PATH...``: read ECG files and print their measurements and statements.

A WFDB record is named by its ``.hea`` path; the signal files its header names are read from
the same folder. With ``--json`` each file is one JSON line: ``"path"``, the measurements,
``"r_peaks"`` and ``"beats"`` (sample indices or null, at the file's own sampling rate), and
what the cart wrote into the file: ``"device_measurements"`` (beside ours in
``"device_comparison"``), ``"device_statements"``, ``"device_lead_measurements"`` and
``"device_pacemaker_spikes"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ecg.analysis import analyze_ecg
from ecg.errors import EcgError
from ecg.formats import read_ecg
from ecg.record import EcgRecord

#: Bigger than any ECG a cart writes (a 24-hour Holter is beyond this command's purpose).
MAX_FILE_BYTES = 256 * 1024**2

#: How the plain listing names the measurements (key, label, unit).
_LABELS = (
    ("heart_rate_bpm", "rate", "bpm"),
    ("rr_ms", "RR", "ms"),
    ("pr_ms", "PR", "ms"),
    ("qrs_ms", "QRS", "ms"),
    ("qt_ms", "QT", "ms"),
    ("qtc_bazett_ms", "QTc Bazett", "ms"),
    ("qtc_fridericia_ms", "QTc Fridericia", "ms"),
    ("qtc_framingham_ms", "QTc Framingham", "ms"),
    ("p_axis_deg", "P axis", "°"),
    ("qrs_axis_deg", "QRS axis", "°"),
    ("t_axis_deg", "T axis", "°"),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ecg = sub.add_parser("ecg", help="ECG files on this machine")
    ecg_sub = ecg.add_subparsers(dest="ecg_command", required=True)
    analyze = ecg_sub.add_parser(
        "analyze",
        help="print the measurements and statements of ECG files (WFDB: the .hea path)",
    )
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    analyze.add_argument(
        "--json", action="store_true", help="one JSON object per file, one per line"
    )


def _wfdb_signal_files(header: bytes, folder: Path) -> dict[str, bytes]:
    """The signal files a WFDB header names (first field of each signal line), if present."""
    lines = [
        line.strip()
        for line in header.decode("latin-1").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    found: dict[str, bytes] = {}
    for line in lines[1:]:
        name = line.split()[0]
        candidate = folder / name
        if name not in found and Path(name).name == name and candidate.is_file():
            found[name] = _read(candidate)
    return found


def _read(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise EcgError(f"{size} bytes: larger than {MAX_FILE_BYTES // 1024**2} MB")
    return path.read_bytes()


def read_path(path: Path) -> EcgRecord:
    """The record of one ECG file (a WFDB record with its signal files)."""
    data = _read(path)
    related = _wfdb_signal_files(data, path.parent) if path.suffix.lower() == ".hea" else None
    return read_ecg(data, path.name, related_files=related)


def _plain(path: Path, record: EcgRecord, result: dict[str, Any], out: TextIO) -> None:
    print(f"{path}: {record.source_format.value}, {len(record.leads)} leads, ", end="", file=out)
    print(f"{record.sampling_rate_hz:g} Hz, {record.duration_s:.1f} s", file=out)
    measured = result["measurements"]
    parts = [
        f"{label} {measured[key]:g} {unit}"
        for key, label, unit in _LABELS
        if measured.get(key) is not None
    ]
    print("  " + (", ".join(parts) if parts else "no measurements"), file=out)
    print(f"  beats: {len(result['r_peaks'])}", file=out)
    for statement in result["statements"]:
        print(f"  - {statement['text_zh']} ({statement['text_en']})", file=out)
    for warning in result["warnings"]:
        print(f"  ! {warning}", file=out)


def analyze(paths: list[Path], *, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Analyze each file in turn; 0 when all were read, 1 when any could not be."""
    failed = 0
    for path in paths:
        try:
            record = read_path(path)
            result = analyze_ecg(record).to_dict()
        except (EcgError, OSError) as exc:
            failed += 1
            print(f"telemed ecg analyze: {path}: {exc}", file=sys.stderr)
            if as_json:
                line = {"path": str(path), "error": str(exc)}
                print(json.dumps(line, ensure_ascii=False), file=out)
            continue
        if as_json:
            answer = {"path": str(path), "format": record.source_format.value, **result}
            print(json.dumps(answer, ensure_ascii=False), file=out)
        else:
            _plain(path, record, result, out)
    return 1 if failed else 0
