"""Measurements against the GE MUSE files' own values, and the speed of a full analysis.

Usage::

    .venv/bin/python bench/ecg_measurements.py

Targets: intervals within 10 ms, rate within 5 bpm, axes within 15 degrees of GE 12SL's
values stored in each file; a full analysis of a 10 s 12-lead ECG in under 100 ms on one core.
The files are the repository's own (tests/data/ecg/formats/ge_muse_xml).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecg_data import VENDORED
from ecg.analysis import analyze_ecg
from ecg.formats import read_ecg

#: (our key, the file's key, tolerance)
COMPARED = (
    ("heart_rate_bpm", "heart_rate_bpm", 5.0),
    ("pr_ms", "pr_ms", 10.0),
    ("qrs_ms", "qrs_ms", 10.0),
    ("qt_ms", "qt_ms", 10.0),
    ("qtc_bazett_ms", "qtc_ms", 10.0),
    ("p_axis_deg", "p_axis_deg", 15.0),
    ("qrs_axis_deg", "qrs_axis_deg", 15.0),
    ("t_axis_deg", "t_axis_deg", 15.0),
)


def main() -> None:
    files = sorted((VENDORED / "formats" / "ge_muse_xml").glob("*.xml"))
    print(f"data: {len(files)} GE MUSE files in {files[0].parent}")
    within = {key: 0 for key, _, _ in COMPARED}
    compared = {key: 0 for key, _, _ in COMPARED}
    for path in files:
        record = read_ecg(path.read_bytes(), path.name)
        analysis = analyze_ecg(record)
        cells = []
        for ours_key, device_key, tolerance in COMPARED:
            ours = analysis.measurements.get(ours_key)
            device = record.device_measurements.get(device_key)
            if ours is None or device is None:
                cells.append(f"{ours_key} -")
                continue
            ok = abs(ours - device) <= tolerance
            compared[ours_key] += 1
            within[ours_key] += ok
            cells.append(f"{ours_key} {ours:.0f}/{device:.0f}{'' if ok else ' !'}")
        print(f"{path.name}: " + ", ".join(cells))
    print(
        "within tolerance (ours/GE): " + ", ".join(f"{k} {within[k]}/{compared[k]}" for k in within)
    )

    record = read_ecg(files[0].read_bytes(), files[0].name)
    analyze_ecg(record)
    runs = []
    for _ in range(20):
        start = time.perf_counter()
        analyze_ecg(record)
        runs.append(time.perf_counter() - start)
    runs.sort()
    print(
        f"speed: full analysis of {files[0].name} ({len(record.leads)} leads, "
        f"{record.duration_s:.0f} s, {record.sampling_rate_hz:.0f} Hz): median "
        f"{1000 * runs[len(runs) // 2]:.1f} ms, best {1000 * runs[0]:.1f} ms (20 runs, one core)"
    )


if __name__ == "__main__":
    main()
